// Command images builds one OCI image per Bosun service with
// go-containerregistry, without Docker or a registry: a static binary on a
// minimal non-root base, stamped with the version and the git revision.
//
//	images [-out DIR] [-format oci|oci-archive] [-services a,b] [-version V] [-revision R]
//
// Load an archive into containerd with
// `ctr -n k8s.io images import DIR/apiserver.tar`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bosun.dev/tools/internal/images"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var (
		opts     images.Options
		format   string
		services string
		created  string
		platform string
	)
	fs := flag.NewFlagSet("images", flag.ExitOnError)
	fs.StringVar(&opts.Root, "root", "", "repository root, the folder with go.work (default: found from the working directory upwards)")
	fs.StringVar(&opts.OutDir, "out", "", "output folder (default ROOT/bin/images)")
	fs.StringVar(&format, "format", string(images.FormatLayout), "oci: an OCI image layout folder per service; oci-archive: a tarball of one per service")
	fs.StringVar(&services, "services", "", "comma-separated services to build (default all six)")
	fs.StringVar(&opts.Repository, "repository", "bosun", "image names are REPOSITORY/SERVICE:VERSION")
	fs.StringVar(&opts.Version, "version", "", "version to stamp (default `git describe --tags --always --dirty`)")
	fs.StringVar(&opts.Revision, "revision", "", "git revision to stamp (default `git rev-parse HEAD`)")
	fs.StringVar(&created, "created", "", "creation time, RFC 3339 (default $SOURCE_DATE_EPOCH, else the Unix epoch, for reproducible builds)")
	fs.StringVar(&platform, "platform", "linux/"+runtime.GOARCH, "target OS/architecture")
	fs.StringVar(&opts.CACertificates, "ca-certificates", images.DefaultCACertificates, "CA bundle copied into the base layer")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	f, err := images.ParseFormat(format)
	if err != nil {
		return fmt.Errorf("-format: %w", err)
	}
	opts.Format = f
	osArch := strings.Split(platform, "/")
	if len(osArch) != 2 || osArch[0] == "" || osArch[1] == "" {
		return fmt.Errorf("-platform %q: want OS/ARCH, e.g. linux/amd64", platform)
	}
	opts.OS, opts.Arch = osArch[0], osArch[1]
	if opts.Created, err = creationTime(created); err != nil {
		return err
	}
	var names []string
	if services != "" {
		names = strings.Split(services, ",")
	}
	selected, err := images.Select(names)
	if err != nil {
		return fmt.Errorf("-services: %w", err)
	}
	if opts.Root == "" {
		if opts.Root, err = findRoot(); err != nil {
			return err
		}
	}
	if opts.OutDir == "" {
		opts.OutDir = filepath.Join(opts.Root, "bin", "images")
	}
	if opts.Version == "" {
		opts.Version = git(opts.Root, "dev", "describe", "--tags", "--always", "--dirty")
	}
	if opts.Revision == "" {
		opts.Revision = git(opts.Root, "unknown", "rev-parse", "HEAD")
	}
	opts.Log = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = images.Build(ctx, opts, selected)
	return err
}

// creationTime reads -created, else $SOURCE_DATE_EPOCH; zero means the epoch.
func creationTime(flagValue string) (time.Time, error) {
	if flagValue != "" {
		t, err := time.Parse(time.RFC3339, flagValue)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created: %w", err)
		}
		return t, nil
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
		}
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, nil
}

// findRoot walks up from the working directory to the folder with go.work.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: pass -root")
		}
		dir = parent
	}
}

// git runs a git query in root, or returns fallback when git cannot answer.
func git(root, fallback string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		return s
	}
	return fallback
}

package skew

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// EnvBaseline names the revision (tag, branch or commit) to take the old
// services from instead of the previous release.
const EnvBaseline = "BOSUN_SKEW_BASELINE"

// ErrNoBaseline means the repository has no revision to compare against:
// a shallow clone, or a first commit without tags. Callers skip.
var ErrNoBaseline = errors.New("no baseline revision")

// Baseline is the revision the old services are built from.
type Baseline struct {
	// Commit is the full commit hash.
	Commit string
	// Name is the tag, EnvBaseline's value, or "HEAD^".
	Name string
	// Head is the full hash of HEAD, for the report.
	Head string
}

// String describes the baseline in one line: "v0.3.0 (1a2b3c4d5e6f)".
func (b Baseline) String() string { return fmt.Sprintf("%s (%.12s)", b.Name, b.Commit) }

// FindBaseline picks the baseline of the repository holding dir: the
// revision override when it is not "", else the newest tag matching v*
// (by version order, a pre-release before its release) that is reachable
// from HEAD and does not point at HEAD, else HEAD's first parent. It
// returns an error wrapping ErrNoBaseline when the history needed is not
// there.
func FindBaseline(ctx context.Context, dir, override string) (Baseline, error) {
	shallow, err := git(ctx, dir, "rev-parse", "--is-shallow-repository")
	if err != nil {
		return Baseline{}, fmt.Errorf("%w: %s is not a git work tree with history: %v", ErrNoBaseline, dir, err)
	}
	if shallow == "true" {
		return Baseline{}, fmt.Errorf("%w: the repository is a shallow clone, so the previous release is not there to build (git fetch --unshallow --tags)", ErrNoBaseline)
	}
	head, err := commitOf(ctx, dir, "HEAD")
	if err != nil {
		return Baseline{}, fmt.Errorf("%w: HEAD: %v", ErrNoBaseline, err)
	}
	if override != "" {
		c, err := commitOf(ctx, dir, override)
		if err != nil {
			return Baseline{}, fmt.Errorf("%s=%s: not a commit in this repository: %v", EnvBaseline, override, err)
		}
		return Baseline{Commit: c, Name: override, Head: head}, nil
	}
	tags, err := git(ctx, dir, "-c", "versionsort.suffix=-", "tag", "--merged", "HEAD", "--list", "v*", "--sort=-version:refname")
	if err != nil {
		return Baseline{}, err
	}
	for _, tag := range strings.Fields(tags) {
		c, err := commitOf(ctx, dir, "refs/tags/"+tag)
		if err != nil {
			return Baseline{}, err
		}
		if c != head {
			return Baseline{Commit: c, Name: tag, Head: head}, nil
		}
	}
	parent, err := commitOf(ctx, dir, "HEAD^1")
	if err != nil {
		return Baseline{}, fmt.Errorf("%w: no tag v* before HEAD and HEAD has no parent", ErrNoBaseline)
	}
	return Baseline{Commit: parent, Name: "HEAD^", Head: head}, nil
}

// commitOf resolves rev to a full commit hash.
func commitOf(ctx context.Context, dir, rev string) (string, error) {
	return git(ctx, dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
}

// Export writes the tree of commit into dir (which must exist) with git
// archive, leaving the repository's refs, index and work trees alone.
func Export(ctx context.Context, repo, commit, dir string) error {
	archive := gitCommand(ctx, repo, "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var archiveErr, untarErr bytes.Buffer
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		return fmt.Errorf("tar: %w", err)
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("git archive %s: %v: %s", commit, err, strings.TrimSpace(archiveErr.String()))
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("extracting git archive %s into %s: %v: %s", commit, dir, err, strings.TrimSpace(untarErr.String()))
	}
	return nil
}

// git runs git in dir and returns its trimmed standard output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := gitCommand(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// gitCommand is git with dir as its work tree. The repository is marked
// safe for this command only: CI checks it out as another user than the
// one running the tests.
func gitCommand(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "safe.directory=*", "-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	return cmd
}

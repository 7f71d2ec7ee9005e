// Command bench runs Bosun's benchmarks, prints their results and writes
// each one's section of the results file (docs/benchmarks.md).
//
//	bench [-only NAME] [-n N] [-concurrency C] [-rounds R] [-warmup W] [-out FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"bosun.dev/tools/internal/bench"
)

// Defaults keep a full run under two minutes on a 2-core machine.
const (
	defaultN           = 20000
	defaultConcurrency = 32
	defaultRounds      = 3
	defaultWarmup      = 500
)

func main() { os.Exit(benchMain()) }

// benchMain runs the command and returns its exit code, so that deferred
// cleanup runs before the process exits.
func benchMain() int {
	var (
		out           string
		only          string
		apiserverArgs string
		cpuProfile    string
		cfg           bench.Config
	)
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&out, "out", "docs/benchmarks.md", "results file whose benchmark sections are replaced (\"\" writes none)")
	fs.StringVar(&only, "only", "", "run only this benchmark: "+strings.Join(bench.Names(), ", "))
	fs.IntVar(&cfg.N, "n", defaultN, "measured operations per side and round")
	fs.IntVar(&cfg.Concurrency, "concurrency", defaultConcurrency, "concurrent goroutines on each side")
	fs.IntVar(&cfg.Rounds, "rounds", defaultRounds, "interleaved measured rounds")
	fs.IntVar(&cfg.Warmup, "warmup", defaultWarmup, "uncounted operations per side before the first round")
	fs.StringVar(&cfg.APIServer, "apiserver", siblingBinary("apiserver"), "apiserver binary")
	fs.StringVar(&apiserverArgs, "apiserver-args", "", "extra apiserver flags, space-separated (e.g. --metrics-listen=127.0.0.1:6490 to profile it)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (etcd and the load generators) to this file")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 || cfg.N < 1 || cfg.Concurrency < 1 || cfg.Rounds < 1 || cfg.Warmup < 1 {
		fmt.Fprintln(os.Stderr, "bench: -n, -concurrency, -rounds and -warmup must be positive; no arguments are taken")
		return 2
	}
	registry := bench.Registry()
	names := bench.Names()
	if only != "" {
		if _, ok := registry[only]; !ok {
			fmt.Fprintf(os.Stderr, "bench: no benchmark %q; there are: %s\n", only, strings.Join(names, ", "))
			return 2
		}
		names = []string{only}
	}
	cfg.APIServerArgs = strings.Fields(apiserverArgs)
	cfg.Args = fmt.Sprintf("-n %d -concurrency %d -rounds %d -warmup %d", cfg.N, cfg.Concurrency, cfg.Rounds, cfg.Warmup)
	cfg.Defaults = cfg.N == defaultN && cfg.Concurrency == defaultConcurrency && cfg.Rounds == defaultRounds && cfg.Warmup == defaultWarmup
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the benchmark cleans up; a second one kills.
		<-ctx.Done()
		stop()
	}()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, registry, names, cfg, out); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, registry map[string]bench.Func, names []string, cfg bench.Config, out string) error {
	for _, name := range names {
		rep, err := registry[name](ctx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Println(rep.Text)
		if out != "" {
			if err := bench.WriteSection(out, name, rep.Markdown); err != nil {
				return err
			}
			fmt.Printf("wrote the %s section of %s\n", name, out)
		}
	}
	return nil
}

// siblingBinary is the path of a binary in the bench binary's directory
// (bin/ after `make build`).
func siblingBinary(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return filepath.Join("bin", name)
	}
	return filepath.Join(filepath.Dir(exe), name)
}

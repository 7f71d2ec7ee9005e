package bench

import (
	"context"
	"io"
	"sort"
)

// Config is what every benchmark is run with.
type Config struct {
	// N is the number of measured operations per side and round.
	N int
	// Concurrency is the number of goroutines issuing operations.
	Concurrency int
	// Rounds is the number of interleaved measured rounds.
	Rounds int
	// Warmup is the number of uncounted operations per side before round 1.
	Warmup int
	// APIServer is the path of the apiserver binary.
	APIServer string
	// APIServerArgs are extra flags for the apiserver, e.g. --metrics-listen
	// to profile it during a run.
	APIServerArgs []string
	// Args are the bench flags that reproduce this run, e.g. "-n 20000 -concurrency 32".
	Args string
	// Defaults is true when Args are the defaults, so that `make bench` reproduces the run.
	Defaults bool
	// Progress receives one line per step; io.Discard silences it.
	Progress io.Writer
}

// Report is the outcome of one benchmark.
type Report struct {
	// Text is the human-readable result for the terminal.
	Text string
	// Markdown is the benchmark's section of the results file, without its markers.
	Markdown string
}

// Func runs one benchmark. It stops when ctx ends and releases everything it
// started before returning, also on error.
type Func func(ctx context.Context, cfg Config) (Report, error)

// Registry returns the benchmarks by name.
func Registry() map[string]Func {
	return map[string]Func{
		APIServerCreate: RunAPIServerCreate,
		SchedulerPlain:  RunSchedulerPlain, SchedulerAffinity: RunSchedulerAffinity,
	}
}

// Names returns the registered benchmark names in order.
func Names() []string {
	var names []string
	for name := range Registry() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

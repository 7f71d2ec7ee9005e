package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func defaults() options {
	return options{percentageOfNodesToScore: -1, parallelism: 16, maxConcurrentBinds: 256, bindTimeout: 30 * time.Second,
		initialBackoff: time.Second, maxBackoff: 10 * time.Second}
}

func TestConfigurationFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("percentageOfNodesToScore: 30\nprofiles:\n- schedulerName: packer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("profiles:\n- plugins: {enabled: [{name: Nope}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*options)
		want   string // error substring; "" for success
	}{
		{name: "defaults", change: func(*options) {}},
		{name: "file", change: func(o *options) { o.configFile = good }},
		{name: "missing file", change: func(o *options) { o.configFile = filepath.Join(dir, "none.yaml") }, want: "reading scheduler configuration"},
		{name: "bad file", change: func(o *options) { o.configFile = bad }, want: `unknown plugin "Nope"`},
		{name: "percentage too high", change: func(o *options) { o.percentageOfNodesToScore = 150 }, want: "--percentage-of-nodes-to-score"},
		{name: "parallelism zero", change: func(o *options) { o.parallelism = 0 }, want: "--parallelism"},
		{name: "binds zero", change: func(o *options) { o.maxConcurrentBinds = 0 }, want: "--max-concurrent-binds"},
		{name: "bind timeout zero", change: func(o *options) { o.bindTimeout = 0 }, want: "--bind-timeout"},
		{name: "backoffs inverted", change: func(o *options) { o.initialBackoff = time.Minute }, want: "--pod-initial-backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := defaults()
			tc.change(&o)
			cfg, err := configuration(o)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (config %+v), want an error containing %q", err, cfg, tc.want)
			}
		})
	}
	o := defaults()
	o.configFile, o.percentageOfNodesToScore = good, 0
	cfg, err := configuration(o)
	if err != nil || cfg.PercentageOfNodesToScore != 0 || cfg.Profiles[0].SchedulerName != "packer" {
		t.Fatalf("the flag did not override the file: %+v, %v", cfg, err)
	}
}

package main

import (
	"flag"
	"strings"
	"testing"
)

func TestOptionsRefuseBadValuesNamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--workers", "replicaset"}, "--workers"},
		{[]string{"--workers", "replicaset=0"}, "--workers"},
		{[]string{"--workers", "replicaset=x"}, "--workers"},
		{[]string{"--resync-period", "-1s"}, "--resync-period"},
		{[]string{"--leader-elect-name", ""}, "--leader-elect-name"},
	} {
		var o options
		fs := flag.NewFlagSet("controller", flag.ContinueOnError)
		o.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if _, err := o.config(nil, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
	var o options
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse([]string{"--workers", "replicaset=10, endpoints=2", "--controllers", "replicaset,endpoints"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := o.config(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers["replicaset"] != 10 || cfg.Workers["endpoints"] != 2 || len(cfg.Controllers) != 2 || cfg.Identity == "" || !cfg.LeaderElect {
		t.Fatalf("config %+v", cfg)
	}
}

package checker

import (
	"flag"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestDefaultOptionsAreValid(t *testing.T) {
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	// The defaults meet the 15 s goal with room for the controller, the
	// scheduler and the new node's agent: grace + one monitor period +
	// toleration.
	if budget := o.GracePeriod + o.MonitorPeriod + time.Duration(o.DefaultTolerationSeconds)*time.Second; budget > 10*time.Second {
		t.Errorf("detection plus toleration take %v by default, leaving under 5 s of the 15 s goal", budget)
	}
}

func TestBadFlagsNameTheFlag(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--node-grace-period=0s"}, "--node-grace-period=0s: must be positive"},
		{[]string{"--node-monitor-period=5s"}, "--node-monitor-period=5s: must not exceed --node-grace-period (4s)"},
		{[]string{"--probe-interval=4s"}, "--probe-interval=4s: must be less than --node-grace-period"},
		{[]string{"--probe-timeout=0s"}, "--probe-timeout=0s: must be positive"},
		{[]string{"--probe-concurrency=0"}, "--probe-concurrency=0: must be at least 1"},
		{[]string{"--probe-jitter=1.5"}, "--probe-jitter=1.5: must be between 0 and 1"},
		{[]string{"--default-toleration-seconds=-1"}, "--default-toleration-seconds=-1: must not be negative"},
		{[]string{"--unhealthy-threshold=0"}, "--unhealthy-threshold=0: must be above 0 and at most 1"},
		{[]string{"--unhealthy-threshold=1.2"}, "--unhealthy-threshold=1.2: must be above 0 and at most 1"},
		{[]string{"--eviction-rate=0"}, "--eviction-rate=0: must be positive"},
		{[]string{"--eviction-burst=0"}, "--eviction-burst=0: must be at least 1"},
		{[]string{"--node-lease-namespace="}, `--node-lease-namespace="": must not be empty`},
		{[]string{"--node-agent-cert-file=c.pem"}, "--node-agent-cert-file and --node-agent-key-file go together"},
		{[]string{"--leader-elect-renew-deadline=5s"}, "need 0 < --leader-elect-retry-period"},
		{[]string{"--leader-elect=false", "--leader-elect-renew-deadline=5s"}, ""},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		fs := flag.NewFlagSet("health-checker", flag.ContinueOnError)
		o.RegisterFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		err := o.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v, want no error", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

func TestNewRefusesAMissingCAFile(t *testing.T) {
	o := DefaultOptions()
	o.NodeAgentCAFile = t.TempDir() + "/missing.pem"
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = New(Config{Conn: conn, Options: o})
	if err == nil || !strings.Contains(err.Error(), "--node-agent-ca-file") {
		t.Errorf("New with a missing CA file: %v, want an error naming --node-agent-ca-file", err)
	}
}

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envRunMain makes the test binary run main with its arguments instead of
// the tests.
const envRunMain = "MINIMAL_SCHEDULER_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Bad flags are refused before anything starts, with exit code 2 and a
// message naming the flag.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--leader-elect-renew-deadline=5s"}, "--leader-elect-renew-deadline 5s"},
		{[]string{"--leader-elect-retry-period=0s"}, "--leader-elect-retry-period 0s"},
		{[]string{"--leader-elect-lease-name="}, "--leader-elect-lease-name"},
		{[]string{"--no-such-flag"}, "-no-such-flag"},
		{[]string{"--insecure", "stray"}, `unexpected arguments ["stray"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], append(tc.args, "--apiserver=127.0.0.1:1", "--insecure", "--listen=127.0.0.1:0")...)
			cmd.Env = append(os.Environ(), envRunMain+"=1")
			out, err := cmd.CombinedOutput()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not name %q", out, tc.want)
			}
		})
	}
}

package testproc

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestStopEndsAProcessAndKeepsItsOutput(t *testing.T) {
	for name, start := range map[string]func(string, *exec.Cmd) (*Process, error){"Start": Start, "StartOnOwnThread": StartOnOwnThread} {
		p, err := start("sleeper", exec.Command("sh", "-c", "echo started; exec sleep 30"))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.Output(), "started") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		p.Stop(time.Minute)
		if !p.Exited() || p.ExitedOnItsOwn() || p.Err() == nil || !strings.Contains(p.Err().Error(), "terminated") {
			t.Errorf("%s: after Stop: exited %v, on its own %v, %v; want ended by SIGTERM", name, p.Exited(), p.ExitedOnItsOwn(), p.Err())
		}
		if p.Output() != "started\n" {
			t.Errorf("%s: output %q", name, p.Output())
		}
	}
}

func TestExitOnItsOwnIsTold(t *testing.T) {
	p, err := Start("quitter", exec.Command("sh", "-c", "echo bye; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if !p.ExitedOnItsOwn() || p.Err() == nil {
		t.Errorf("on its own %v, err %v; want an exit on its own with status 3", p.ExitedOnItsOwn(), p.Err())
	}
	p.Kill() // nothing left to kill
	if got := p.Tail(2); got != "...\ne\n" {
		t.Errorf("Tail(2) = %q", got)
	}
}

package observability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"bosun.dev/pkg/server"
	"bosun.dev/tests/internal/testproc"
)

// proc is one running service.
type proc struct {
	name    string
	listen  string // its gRPC address, --listen
	metrics string // address of /metrics
	traces  string // its BOSUN_TRACES_FILE
	*testproc.Process
}

// start runs the service name with args (which include --listen) plus --metrics-listen on a free
// loopback port, writing its spans to dir/<name>.jsonl. It is stopped with
// SIGTERM (SIGKILL after 10 s) when the test ends; its output is logged
// when the test failed.
func start(t *testing.T, dir, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, metrics: freePort(t), traces: filepath.Join(dir, name+".jsonl")}
	for i, a := range args[:len(args)-1] {
		if a == "--listen" {
			p.listen = args[i+1]
		}
	}
	cmd := exec.Command(filepath.Join(bin, name), append(args, "--metrics-listen", p.metrics)...)
	cmd.Env = append(os.Environ(), server.EnvTracesFile+"="+p.traces)
	var err error
	if p.Process, err = testproc.Start(name, cmd); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		p.LogOnFailure(t, 16<<10)
	})
	eventually(t, 60*time.Second, name+" serving /metrics", func() error {
		if p.Exited() {
			t.Fatalf("%s exited: %v\n%s", name, p.Err(), p.Tail(16<<10))
		}
		_, err := scrape(p.metrics)
		return err
	})
	return p
}

// scrape fetches /metrics.
func scrape(addr string) ([]byte, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return b.Bytes(), nil
}

// readSpans reads every span of a BOSUN_TRACES_FILE; a missing file has
// none yet.
func readSpans(path string) ([]server.FileSpan, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []server.FileSpan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var s server.FileSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			// The last line may be half written while the service runs.
			continue
		}
		spans = append(spans, s)
	}
	return spans, sc.Err()
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// eventually polls f every 50 ms until it returns nil, failing the test
// with f's last error when timeout passes first.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ctxTimeout is a context for one call.
func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

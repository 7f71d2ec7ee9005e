// Package logs reads container logs for NodeAgentService.ContainerLogs: it
// streams the log files the runtime writes for each container attempt
// (LOG_DIR/<namespace>_<pod>_<uid>/<container>/<attempt>.log), with tail,
// follow, previous-attempt and byte-limited reads.
package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
)

// Backend is what the server needs from the running agent.
type Backend struct {
	// Pod looks a pod bound to this node up by namespace and name.
	Pod func(namespace, name string) (*corev1.Pod, bool)
	// Dir is the log directory of a pod's container.
	Dir func(pod *corev1.Pod, container string) string
	// Running reports whether the given attempt of the container still runs.
	Running func(ctx context.Context, pod *corev1.Pod, container string, attempt int) bool
}

// attempts lists the attempt numbers with a log file in dir, ascending.
func attempts(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Stream sends a container's log through send, as req asks, polling a
// followed file every poll. Errors are gRPC statuses.
func Stream(ctx context.Context, b *Backend, req *corev1.ContainerLogsRequest, send func([]byte) error, poll time.Duration) error {
	pod, ok := b.Pod(req.GetNamespace(), req.GetPod())
	if !ok {
		return status.Errorf(codes.NotFound, "pod %s/%s is not on this node", req.GetNamespace(), req.GetPod())
	}
	name := req.GetContainer()
	cs := pod.GetSpec().GetContainers()
	if name == "" {
		if len(cs) != 1 {
			names := make([]string, 0, len(cs))
			for _, c := range cs {
				names = append(names, c.GetName())
			}
			return status.Errorf(codes.InvalidArgument, "pod %s has %d containers (%s): name one", req.GetPod(), len(cs), strings.Join(names, ", "))
		}
		name = cs[0].GetName()
	}
	found := false
	for _, c := range cs {
		found = found || c.GetName() == name
	}
	if !found {
		return status.Errorf(codes.NotFound, "pod %s has no container %q", req.GetPod(), name)
	}
	dir := b.Dir(pod, name)
	as, err := attempts(dir)
	if err != nil || len(as) == 0 {
		return status.Errorf(codes.NotFound, "container %q of pod %s has no logs yet", name, req.GetPod())
	}
	attempt := as[len(as)-1]
	if req.GetPrevious() {
		if len(as) < 2 {
			return status.Errorf(codes.NotFound, "container %q of pod %s has no previous attempt", name, req.GetPod())
		}
		attempt = as[len(as)-2]
	}
	f, err := os.Open(filepath.Join(dir, strconv.Itoa(attempt)+".log"))
	if err != nil {
		return status.Errorf(codes.NotFound, "log of container %q: %v", name, err)
	}
	defer f.Close()
	if req.TailLines != nil {
		off, err := tailOffset(f, *req.TailLines)
		if err != nil {
			return status.Errorf(codes.Internal, "reading log: %v", err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return status.Errorf(codes.Internal, "reading log: %v", err)
		}
	}
	w := &sender{out: send, limit: req.GetLimitBytes()}
	follow := req.GetFollow() && !req.GetPrevious()
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if done, serr := w.send(buf[:n]); serr != nil || done {
				return serr
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return status.Errorf(codes.Internal, "reading log: %v", err)
		}
		if !follow {
			return nil
		}
		if !b.Running(ctx, pod, name, attempt) {
			// The attempt ended: send what it wrote last, then stop.
			rest, _ := io.ReadAll(f)
			if len(rest) > 0 {
				_, serr := w.send(rest)
				return serr
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

type sender struct {
	out   func([]byte) error
	limit int64
	sent  int64
}

// send writes p, cut at the byte limit; done reports the limit was reached.
func (w *sender) send(p []byte) (done bool, err error) {
	if w.limit > 0 && w.sent+int64(len(p)) >= w.limit {
		p, done = p[:w.limit-w.sent], true
	}
	w.sent += int64(len(p))
	if err := w.out(bytes.Clone(p)); err != nil {
		return true, err
	}
	return done, nil
}

// tailOffset returns where the last n lines of f begin.
func tailOffset(f *os.File, n int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if n <= 0 {
		return size, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	end := size
	// A final newline ends the last line; it does not start one.
	if end > 0 {
		if _, err := f.ReadAt(buf[:1], end-1); err != nil {
			return 0, err
		}
		if buf[0] == '\n' {
			end--
		}
	}
	lines := int64(0)
	for pos := end; pos > 0; {
		start := max(pos-block, 0)
		chunk := buf[:pos-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, fmt.Errorf("reading log: %w", err)
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] == '\n' {
				lines++
				if lines == n {
					return start + int64(i) + 1, nil
				}
			}
		}
		pos = start
	}
	return 0, nil
}

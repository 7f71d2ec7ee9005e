package nodeagent

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// history is every version of every pod in the namespace, as a watch
// started before the first case saw them: what the agent reported along
// the way, not only where it ended.
type history struct {
	mu   sync.Mutex
	pods map[string][]*corev1.Pod // by uid, oldest first
	err  error
}

// recordHistory starts the watch; it ends with the suite's context.
func (s *suite) recordHistory(t *testing.T) *history {
	t.Helper()
	h := &history{pods: map[string][]*corev1.Pod{}}
	w, err := s.pods.Watch(s.ctx, client.WatchOptions{Namespace: namespace})
	if err != nil {
		t.Fatalf("watching pods: %v", err)
	}
	go func() {
		rv := ""
		for {
			ev, err := w.Next()
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				// Resume after the last version seen.
				if w, err = s.pods.Watch(s.ctx, client.WatchOptions{Namespace: namespace, ResourceVersion: rv}); err != nil {
					h.mu.Lock()
					h.err = fmt.Errorf("watching pods: %w", err)
					h.mu.Unlock()
					return
				}
				continue
			}
			rv = ev.ResourceVersion
			if ev.Type == client.Bookmark {
				continue
			}
			h.mu.Lock()
			uid := ev.Object.GetMetadata().GetUid()
			h.pods[uid] = append(h.pods[uid], ev.Object)
			h.mu.Unlock()
		}
	}()
	return h
}

// check finds, for each pod, reports that contradict earlier ones: a pod
// IP, host IP or start time that changed once set, a phase after Succeeded
// or Failed, a restart count that went down.
func (h *history) check() (problems []string, versions map[string]int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	versions = map[string]int{}
	for _, pods := range h.pods {
		name := pods[0].GetMetadata().GetName()
		versions[name] = len(pods)
		problem := func(i int, format string, args ...any) {
			problems = append(problems, fmt.Sprintf("pod %s, version %d of %d: %s", name, i+1, len(pods), fmt.Sprintf(format, args...)))
		}
		var podIP, hostIP, phase string
		var started *corev1.PodStatus
		restarts := map[string]int32{}
		for i, p := range pods {
			st := p.GetStatus()
			if podIP != "" && st.GetPodIp() != podIP {
				problem(i, "podIP %q after %q", st.GetPodIp(), podIP)
			}
			if hostIP != "" && st.GetHostIp() != hostIP {
				problem(i, "hostIP %q after %q", st.GetHostIp(), hostIP)
			}
			if started != nil && !st.GetStartTime().AsTime().Equal(started.GetStartTime().AsTime()) {
				problem(i, "startTime %v after %v", st.GetStartTime(), started.GetStartTime())
			}
			if (phase == "Succeeded" || phase == "Failed") && st.GetPhase() != phase {
				problem(i, "phase %q after %q", st.GetPhase(), phase)
			}
			for _, c := range st.GetContainerStatuses() {
				if c.GetRestartCount() < restarts[c.GetName()] {
					problem(i, "container %s restartCount %d after %d", c.GetName(), c.GetRestartCount(), restarts[c.GetName()])
				}
				restarts[c.GetName()] = c.GetRestartCount()
			}
			podIP, hostIP, phase = st.GetPodIp(), st.GetHostIp(), st.GetPhase()
			if st.GetStartTime() != nil {
				started = st
			}
		}
	}
	sort.Strings(problems)
	return problems, versions, h.err
}

// consistentHistory: no version of any pod contradicts an earlier one.
func (s *suite) consistentHistory(h *history) func(t *testing.T) {
	return func(t *testing.T) {
		problems, versions, err := h.check()
		if err != nil {
			t.Fatal(err)
		}
		if len(versions) == 0 {
			t.Fatal("the watch saw no pod")
		}
		for _, p := range problems {
			t.Error(p)
		}
		names := make([]string, 0, len(versions))
		total := 0
		for n, v := range versions {
			names = append(names, fmt.Sprintf("%s:%d", n, v))
			total += v
		}
		sort.Strings(names)
		t.Logf("%d versions of %d pods watched (%v)", total, len(versions), names)
	}
}

func TestHistoryCheck(t *testing.T) {
	version := func(uid, phase, ip string, restarts int32) *corev1.Pod {
		return &corev1.Pod{
			Metadata: &metav1.ObjectMeta{Name: "p-" + uid, Uid: uid},
			Status: &corev1.PodStatus{Phase: phase, PodIp: ip, HostIp: "127.0.0.1",
				ContainerStatuses: []*corev1.ContainerStatus{{Name: "app", RestartCount: restarts}}},
		}
	}
	h := &history{pods: map[string][]*corev1.Pod{
		"good": {version("good", "Pending", "", 0), version("good", "Running", "10.0.0.2", 0),
			version("good", "Running", "10.0.0.2", 2), version("good", "Failed", "10.0.0.2", 2)},
		"moved":   {version("moved", "Running", "10.0.0.3", 0), version("moved", "Running", "10.0.0.4", 0)},
		"revived": {version("revived", "Failed", "10.0.0.5", 0), version("revived", "Running", "10.0.0.5", 0)},
		"forgot":  {version("forgot", "Running", "10.0.0.6", 3), version("forgot", "Running", "10.0.0.6", 1)},
	}}
	problems, versions, err := h.check()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`pod p-forgot, version 2 of 2: container app restartCount 1 after 3`,
		`pod p-moved, version 2 of 2: podIP "10.0.0.4" after "10.0.0.3"`,
		`pod p-revived, version 2 of 2: phase "Running" after "Failed"`,
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
	if versions["p-good"] != 4 {
		t.Errorf("versions %v: want 4 of p-good", versions)
	}
}

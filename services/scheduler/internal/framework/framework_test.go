package framework_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"bosun.dev/services/scheduler/internal/framework"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

// fake is a configurable plugin at every extension point.
type fake struct {
	name      string
	preFilter *framework.Status
	filter    func(ni *framework.NodeInfo) *framework.Status
	score     func(ni *framework.NodeInfo) int64
	mu        sync.Mutex
	calls     map[string]int
}

func (f *fake) Name() string { return f.name }
func (f *fake) count(point string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[point]++
}
func (f *fake) PreFilter(context.Context, *framework.CycleState, *framework.PodInfo) *framework.Status {
	f.count("PreFilter")
	return f.preFilter
}
func (f *fake) Filter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	f.count("Filter")
	if f.filter == nil {
		return nil
	}
	return f.filter(ni)
}
func (f *fake) Score(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, ni *framework.NodeInfo) (int64, *framework.Status) {
	f.count("Score")
	return f.score(ni), nil
}
func (f *fake) ScoreExtensions() framework.ScoreExtensions { return nil }
func (f *fake) Bind(context.Context, *framework.CycleState, *framework.PodInfo, string) *framework.Status {
	return nil
}

func build(t *testing.T, plugins ...*fake) *framework.Framework {
	t.Helper()
	reg := framework.Registry{}
	var refs []framework.PluginRef
	for i, p := range plugins {
		reg[p.name] = func(json.RawMessage, framework.Handle) (framework.Plugin, error) { return p, nil }
		refs = append(refs, framework.PluginRef{Name: p.name, Weight: int32(i + 1)})
	}
	fw, err := framework.New(framework.Profile{SchedulerName: "t"}, reg, refs, framework.Options{Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func TestStatusCodes(t *testing.T) {
	var nilStatus *framework.Status
	if !nilStatus.IsSuccess() || nilStatus.Code() != framework.Success || nilStatus.AsError() != nil {
		t.Fatal("a nil status is not success")
	}
	for _, c := range []framework.Code{framework.Unschedulable, framework.UnschedulableAndUnresolvable} {
		s := framework.NewStatus(c, "a", "b")
		if !s.IsRejected() || s.AsError() != nil || s.Message() != "a, b" {
			t.Fatalf("%v: rejected %v, error %v, message %q", c, s.IsRejected(), s.AsError(), s.Message())
		}
	}
	boom := errors.New("boom")
	if s := framework.AsStatus(boom); s.Code() != framework.Error || !errors.Is(s.AsError(), boom) || s.IsRejected() {
		t.Fatalf("AsStatus: %v", s)
	}
}

func TestSkipAndRejection(t *testing.T) {
	skipper := &fake{name: "Skipper", preFilter: framework.NewStatus(framework.Skip)}
	picky := &fake{name: "Picky", filter: func(ni *framework.NodeInfo) *framework.Status {
		if ni.Name() == "bad" {
			return framework.NewStatus(framework.Unschedulable, "bad node")
		}
		return nil
	}}
	fw := build(t, skipper, picky)
	state := framework.NewCycleState()
	pod := st.Pod("p").Info()
	if s := fw.RunPreFilterPlugins(context.Background(), state, pod); !s.IsSuccess() {
		t.Fatal(s)
	}
	good := st.NodeInfo(st.Node("good").Obj())
	bad := st.NodeInfo(st.Node("bad").Obj())
	if s := fw.RunFilterPlugins(context.Background(), state, pod, good); !s.IsSuccess() {
		t.Fatal(s)
	}
	s := fw.RunFilterPlugins(context.Background(), state, pod, bad)
	if s.Code() != framework.Unschedulable || s.Plugin() != "Picky" || s.Message() != "bad node" {
		t.Fatalf("got %v from %q", s, s.Plugin())
	}
	if skipper.calls["Filter"] != 0 {
		t.Fatalf("Filter of a plugin whose PreFilter skipped ran %d times", skipper.calls["Filter"])
	}
}

func TestScoresAreWeighted(t *testing.T) {
	a := &fake{name: "A", score: func(ni *framework.NodeInfo) int64 {
		if ni.Name() == "n1" {
			return 10
		}
		return 0
	}}
	b := &fake{name: "B", score: func(ni *framework.NodeInfo) int64 {
		if ni.Name() == "n2" {
			return 10
		}
		return 0
	}}
	fw := build(t, a, b) // weights 1 and 2
	nodes := []*framework.NodeInfo{st.NodeInfo(st.Node("n1").Obj()), st.NodeInfo(st.Node("n2").Obj())}
	totals, s := fw.RunScorePlugins(context.Background(), framework.NewCycleState(), st.Pod("p").Info(), nodes)
	if !s.IsSuccess() || totals[0] != 10 || totals[1] != 20 {
		t.Fatalf("totals %v (%v), want [10 20]", totals, s)
	}
	out := &fake{name: "Out", score: func(*framework.NodeInfo) int64 { return 101 }}
	if _, s := build(t, out).RunScorePlugins(context.Background(), framework.NewCycleState(), st.Pod("p").Info(), nodes); s.Code() != framework.Error {
		t.Fatalf("a score above MaxNodeScore was accepted: %v", s)
	}
}

// Whether the work is light (done in sequence) or heavy enough to be
// shared between goroutines, the pieces done are a prefix, at least what
// stop asked for and not all.
func TestParallelizerStopsAtAPrefix(t *testing.T) {
	for _, heavy := range []bool{false, true} {
		for _, par := range []int{1, 3, 16} {
			done := make([]bool, 1000)
			var mu sync.Mutex
			n, running, most := 0, 0, 0
			got := framework.Parallelizer{Parallelism: par}.Until(context.Background(), len(done), func(i int) {
				mu.Lock()
				running++
				most = max(most, running)
				mu.Unlock()
				if heavy {
					time.Sleep(200 * time.Microsecond)
				}
				mu.Lock()
				running--
				done[i] = true
				n++
				mu.Unlock()
			}, func() bool { mu.Lock(); defer mu.Unlock(); return n >= 100 })
			last := -1
			for i, d := range done {
				if d {
					if last != i-1 {
						t.Fatalf("heavy %v, parallelism %d: piece %d done after a gap at %d", heavy, par, i, last+1)
					}
					last = i
				}
			}
			if last < 99 || last == len(done)-1 {
				t.Fatalf("heavy %v, parallelism %d: did %d pieces, want at least 100 and not all", heavy, par, last+1)
			}
			if got != last+1 {
				t.Fatalf("heavy %v, parallelism %d: Until reported %d pieces done, did %d", heavy, par, got, last+1)
			}
			// Heavy pieces are shared out whenever there are goroutines and
			// processors to share them with. (Light ones usually are not,
			// but a preempted first chunk may look heavy: not asserted.)
			if heavy && par > 1 && runtime.GOMAXPROCS(0) > 1 && most < 2 {
				t.Fatalf("parallelism %d, GOMAXPROCS %d: heavy pieces ran one at a time", par, runtime.GOMAXPROCS(0))
			}
			if par == 1 && most > 1 {
				t.Fatalf("parallelism 1: %d pieces ran at once", most)
			}
		}
	}
}

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/scheduler/internal/framework"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

const (
	zoneKey = "topology.kubernetes.io/zone"
	hostKey = "kubernetes.io/hostname"
)

// offline is a Scheduler whose cache is filled by the test and whose
// cycles run without an apiserver.
func offline(t testing.TB, seed uint64, parallelism int) *Scheduler {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///offline", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s, err := New(Config{Conn: conn, Seed: seed, Parallelism: parallelism, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// place runs one scheduling cycle for pod and assumes it on the node found.
func (s *Scheduler) place(pod *corev1.Pod) (string, error) {
	pi := framework.NewPodInfo(pod)
	fw := s.profiles[pod.GetSpec().GetSchedulerName()]
	s.cache.UpdateSnapshot(s.snapshot)
	host, err := s.schedulePod(context.Background(), fw, framework.NewCycleState(), pi)
	if err != nil {
		return "", err
	}
	return host, s.cache.AssumePod(pi, host)
}

// world is the test's own, independent account of the cluster.
type world struct {
	nodes map[string]*corev1.Node
	order []string
	cpu   map[string]int64 // milli-cpu requested per node
	mem   map[string]int64
	pods  map[string][]*corev1.Pod
}

func randomCluster(r *rand.Rand, n int) *world {
	w := &world{nodes: map[string]*corev1.Node{}, cpu: map[string]int64{}, mem: map[string]int64{}, pods: map[string][]*corev1.Pod{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%03d", i)
		nw := st.Node(name).Capacity(fmt.Sprint(2+r.IntN(15)), fmt.Sprintf("%dGi", 4+r.IntN(61)), fmt.Sprint(5+r.IntN(30))).
			Label(zoneKey, fmt.Sprintf("z%d", r.IntN(5)))
		if r.IntN(2) == 0 {
			nw.Label("disk", "ssd")
		}
		if r.IntN(10) == 0 {
			nw.Taint("dedicated", "gpu", "NoSchedule")
		}
		if r.IntN(20) == 0 {
			nw.Unschedulable()
		}
		w.nodes[name] = nw.Obj()
		w.order = append(w.order, name)
	}
	return w
}

func randomPod(r *rand.Rand, i int) *corev1.Pod {
	p := st.Pod(fmt.Sprintf("pod-%04d", i)).Req(fmt.Sprintf("%dm", 100+r.IntN(1900)), fmt.Sprintf("%dMi", 128+r.IntN(4000)))
	if r.IntN(5) == 0 {
		p.NodeSelector("disk", "ssd")
	}
	if r.IntN(10) == 0 {
		p.Toleration("dedicated", "Equal", "gpu", "NoSchedule")
	}
	if r.IntN(10) == 0 {
		g := fmt.Sprintf("g%d", r.IntN(10))
		p.Label("group", g).PodAntiAffinity(hostKey, "group", g)
	}
	if r.IntN(10) == 0 {
		a := fmt.Sprintf("s%d", r.IntN(3))
		p.Label("spread", a).Spread(1, zoneKey, "DoNotSchedule", "spread", a)
	}
	if r.IntN(20) == 0 {
		p.HostPort([]int32{80, 443}[r.IntN(2)], "TCP", "")
	}
	return p.Obj()
}

func quantity(s string) framework.Resource { return framework.ResourceList(map[string]string{"x": s}) }

// fits is the test's oracle: whether pod may run on node given the pods
// already there, checked without the plugins.
func (w *world) fits(pod *corev1.Pod, node string) (bool, string) {
	n := w.nodes[node]
	alloc := framework.ResourceList(n.GetStatus().GetAllocatable())
	req, _ := framework.PodRequests(pod.GetSpec())
	switch {
	case n.GetSpec().GetUnschedulable():
		return false, "cordoned"
	case int64(len(w.pods[node])+1) > alloc.AllowedPodNumber:
		return false, "pod count"
	case w.cpu[node]+req.MilliCPU > alloc.MilliCPU:
		return false, "cpu"
	case w.mem[node]+req.Memory > alloc.Memory:
		return false, "memory"
	}
	for k, v := range pod.GetSpec().GetNodeSelector() {
		if n.GetMetadata().GetLabels()[k] != v {
			return false, "node selector"
		}
	}
	for _, t := range n.GetSpec().GetTaints() {
		tolerated := false
		for _, tol := range pod.GetSpec().GetTolerations() {
			tolerated = tolerated || (tol.GetKey() == t.GetKey() && tol.GetValue() == t.GetValue())
		}
		if !tolerated {
			return false, "taint"
		}
	}
	group := pod.GetMetadata().GetLabels()["group"]
	for _, other := range w.pods[node] {
		if group != "" && other.GetMetadata().GetLabels()["group"] == group {
			return false, "anti-affinity"
		}
		for _, hp := range pod.GetSpec().GetContainers()[0].GetPorts() {
			for _, op := range other.GetSpec().GetContainers()[0].GetPorts() {
				if hp.GetHostPort() == op.GetHostPort() {
					return false, "host port"
				}
			}
		}
	}
	if a := pod.GetMetadata().GetLabels()["spread"]; a != "" {
		// Domains are those of the nodes the pod's node selector allows.
		counts := map[string]int{}
	nodes:
		for _, name := range w.order {
			for k, v := range pod.GetSpec().GetNodeSelector() {
				if w.nodes[name].GetMetadata().GetLabels()[k] != v {
					continue nodes
				}
			}
			z := w.nodes[name].GetMetadata().GetLabels()[zoneKey]
			if _, ok := counts[z]; !ok {
				counts[z] = 0
			}
			for _, other := range w.pods[name] {
				if other.GetMetadata().GetLabels()["spread"] == a {
					counts[z]++
				}
			}
		}
		lo := -1
		for _, c := range counts {
			if lo < 0 || c < lo {
				lo = c
			}
		}
		if counts[n.GetMetadata().GetLabels()[zoneKey]]+1-lo > 1 {
			return false, "topology spread"
		}
	}
	return true, ""
}

func (w *world) add(pod *corev1.Pod, node string) {
	req, _ := framework.PodRequests(pod.GetSpec())
	w.cpu[node] += req.MilliCPU
	w.mem[node] += req.Memory
	w.pods[node] = append(w.pods[node], pod)
}

// run schedules pods onto a random cluster and checks every decision
// against the oracle; it returns the placements.
func run(t *testing.T, seed uint64, parallelism, nodes, pods int) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	w := randomCluster(r, nodes)
	s := offline(t, seed, parallelism)
	for _, name := range w.order {
		s.cache.AddNode(w.nodes[name])
	}
	var placements []string
	placed := 0
	for i := 0; i < pods; i++ {
		pod := randomPod(r, i)
		host, err := s.place(pod)
		var fe *FitError
		switch {
		case err == nil:
			if ok, why := w.fits(pod, host); !ok {
				t.Fatalf("pod %d placed on %s, which breaks %s", i, host, why)
			}
			w.add(pod, host)
			placed++
		case errors.As(err, &fe):
			for _, name := range w.order {
				if ok, _ := w.fits(pod, name); ok {
					t.Fatalf("pod %d found unschedulable (%s) but fits %s", i, fe.Message(), name)
				}
			}
		default:
			t.Fatalf("pod %d: %v", i, err)
		}
		placements = append(placements, host)
	}
	if placed < pods/2 {
		t.Fatalf("only %d of %d pods placed: the random cluster is too small to test much", placed, pods)
	}
	return placements
}

// Thousands of random pods on random nodes: no node is over-committed and
// every hard constraint holds; a pod is called unschedulable only when no
// node fits it.
func TestPropertyRandomPodsHonourEveryConstraint(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { run(t, seed, 4, 150, 2000) })
	}
}

// The same seed gives the same decisions, whatever the parallelism.
func TestPropertyDecisionsAreReproducible(t *testing.T) {
	a := run(t, 42, 1, 150, 800)
	b := run(t, 42, 8, 150, 800)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("pod %d: %q with parallelism 1, %q with 8", i, a[i], b[i])
		}
	}
	c := run(t, 43, 1, 150, 800)
	differ := 0
	for i := range a {
		if a[i] != c[i] {
			differ++
		}
	}
	if differ == 0 {
		t.Fatal("a different seed changed no decision: ties are not broken by the seed")
	}
}

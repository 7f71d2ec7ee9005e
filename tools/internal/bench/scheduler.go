package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// The scheduler benchmarks: pods created through the apiserver and bound by
// the scheduler binary, on simulated nodes (Node objects created through
// the API; nothing runs the pods).
const (
	SchedulerPlain    = "scheduler-plain"
	SchedulerAffinity = "scheduler-affinity"
)

// Targets in pods per second on a 2-core machine.
const (
	SchedulerPlainTarget    = 2000
	SchedulerAffinityTarget = 500
)

const (
	schedNodes      = 5000
	schedPlainPods  = 10000
	schedAffPods    = 2000
	schedZones      = 10
	schedPodPrefix  = "sched-"
	schedPodKeys    = "/bosun/core/pods/" + benchNamespace + "/" + schedPodPrefix
	schedRawKeys    = "/bosun-bench/raw/cas/"
	zoneLabel       = "topology.kubernetes.io/zone"
	hostnameLabel   = "kubernetes.io/hostname"
	schedBoundLimit = 5 * time.Minute
)

// schedWorkload is what one scheduler benchmark measures.
type schedWorkload struct {
	name   string
	title  string
	nodes  int
	pods   int
	target float64
	// describe says what the pods ask for, for the report.
	describe string
	pod      func(round string, i int) *corev1.Pod
	// check verifies the placement of a round: pod name -> node name.
	check func(placement map[string]string) error
}

func plainWorkload(nodes, pods int) schedWorkload {
	return schedWorkload{
		name: SchedulerPlain, title: "plain pods", nodes: nodes, pods: pods, target: SchedulerPlainTarget,
		describe: "one container requesting 100m cpu and 128Mi memory, no placement constraints",
		pod:      func(round string, i int) *corev1.Pod { return schedPod(round, i) },
	}
}

func affinityWorkload(nodes, pods int) schedWorkload {
	return schedWorkload{
		name: SchedulerAffinity, title: "required pod anti-affinity plus topology spread", nodes: nodes, pods: pods, target: SchedulerAffinityTarget,
		describe: "as the plain pods, plus required pod anti-affinity against the round's other pods on `" + hostnameLabel +
			"` (one per node) and a topology spread constraint over `" + zoneLabel + "` (maxSkew 1, DoNotSchedule, " +
			fmt.Sprint(schedZones) + " zones)",
		pod: func(round string, i int) *corev1.Pod {
			p := schedPod(round, i)
			sel := &metav1.LabelSelector{MatchLabels: map[string]string{"group": round}}
			p.Metadata.Labels["group"] = round
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []*corev1.PodAffinityTerm{{LabelSelector: sel, TopologyKey: hostnameLabel}},
			}}
			p.Spec.TopologySpreadConstraints = []*corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: "DoNotSchedule", LabelSelector: sel,
			}}
			return p
		},
		check: func(placement map[string]string) error {
			perNode := map[string]int{}
			perZone := map[string]int{}
			for _, node := range placement {
				perNode[node]++
				perZone[schedNodeZone(node)]++
			}
			for node, n := range perNode {
				if n > 1 {
					return fmt.Errorf("anti-affinity violated: %d pods on node %s", n, node)
				}
			}
			lo, hi := -1, 0
			for z := 0; z < schedZones; z++ {
				n := perZone[fmt.Sprintf("zone-%d", z)]
				if lo < 0 || n < lo {
					lo = n
				}
				hi = max(hi, n)
			}
			if hi-lo > 1 {
				return fmt.Errorf("topology spread violated: zones hold between %d and %d pods", lo, hi)
			}
			return nil
		},
	}
}

func schedPod(round string, i int) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{
			Name: fmt.Sprintf("%s%s-%06d", schedPodPrefix, round, i), Namespace: benchNamespace,
			Labels: map[string]string{"app": "sched-bench", "round": round},
		},
		Spec: &corev1.PodSpec{Containers: []*corev1.Container{{
			Name: "app", Image: "registry.example.com/shop/web:1.27.3",
			Resources: &corev1.ResourceRequirements{Requests: map[string]string{"cpu": "100m", "memory": "128Mi"}},
		}}},
	}
}

func schedNodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

func schedNodeZone(node string) string {
	var i int
	fmt.Sscanf(node, "node-%d", &i)
	return fmt.Sprintf("zone-%d", i%schedZones)
}

func schedNode(i int) *corev1.Node {
	name := schedNodeName(i)
	res := map[string]string{"cpu": "4", "memory": "32Gi", "pods": "110"}
	return &corev1.Node{
		Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{hostnameLabel: name, zoneLabel: schedNodeZone(name)}},
		Spec:     &corev1.NodeSpec{},
		Status: &corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []*corev1.NodeCondition{{Type: "Ready", Status: "True"}},
		},
	}
}

// RunSchedulerPlain runs the scheduler-plain benchmark.
func RunSchedulerPlain(ctx context.Context, cfg Config) (Report, error) {
	return runScheduler(ctx, cfg, plainWorkload(schedNodes, schedPlainPods))
}

// RunSchedulerAffinity runs the scheduler-affinity benchmark.
func RunSchedulerAffinity(ctx context.Context, cfg Config) (Report, error) {
	return runScheduler(ctx, cfg, affinityWorkload(schedNodes, schedAffPods))
}

// boundWatch follows pod bindings through a watch and reports when every
// pod of the current round is bound.
type boundWatch struct {
	mu     sync.Mutex
	prefix string
	want   int
	bound  map[string]time.Time
	node   map[string]string
	done   chan struct{}
	err    error
}

func (b *boundWatch) expect(round string, n int) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prefix = schedPodPrefix + round + "-"
	b.want = n
	b.bound = make(map[string]time.Time, n)
	b.node = make(map[string]string, n)
	b.done = make(chan struct{})
	return b.done
}

func (b *boundWatch) results() (map[string]time.Time, map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bound, b.node
}

func (b *boundWatch) run(ctx context.Context, pods *client.Resource[*corev1.Pod], rv string) {
	w, err := pods.Watch(ctx, client.WatchOptions{Namespace: benchNamespace, ResourceVersion: rv})
	if err != nil {
		b.fail(err)
		return
	}
	defer w.Stop()
	for {
		ev, err := w.Next()
		if err != nil {
			if ctx.Err() == nil {
				b.fail(fmt.Errorf("pod watch ended: %w", err))
			}
			return
		}
		if ev.Type != client.Modified && ev.Type != client.Added {
			continue
		}
		node := ev.Object.GetSpec().GetNodeName()
		if node == "" {
			continue
		}
		now := time.Now()
		name := ev.Object.GetMetadata().GetName()
		b.mu.Lock()
		if b.done != nil && strings.HasPrefix(name, b.prefix) {
			if _, seen := b.bound[name]; !seen {
				b.bound[name] = now
				b.node[name] = node
				if len(b.bound) == b.want {
					close(b.done)
					b.done = nil
				}
			}
		}
		b.mu.Unlock()
	}
}

func (b *boundWatch) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

func (b *boundWatch) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// schedRound is one measured round of the scheduler side.
type schedRound struct {
	pods     int
	elapsed  time.Duration // first create sent -> last binding seen
	create   time.Duration // first create sent -> last create returned
	latency  []time.Duration
	cpuSched time.Duration
	cpuAPI   time.Duration
}

func (r schedRound) podsPerSec() float64 { return float64(r.pods) / r.elapsed.Seconds() }

func runScheduler(ctx context.Context, cfg Config, wl schedWorkload) (rep Report, err error) {
	progress := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	machine := ThisMachine()
	started := time.Now()
	load := loadAverage()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	progress("starting etcd")
	et, err := StartEtcd(ctx)
	if err != nil {
		return Report{}, err
	}
	defer et.Close()
	progress("starting %s against %s", cfg.APIServer, et.Endpoint)
	api, err := StartAPIServer(ctx, cfg.APIServer, et.Endpoint, cfg.APIServerArgs...)
	if err != nil {
		return Report{}, err
	}
	defer func() {
		if stopErr := api.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	schedPath := filepath.Join(filepath.Dir(cfg.APIServer), "scheduler")
	progress("starting %s", schedPath)
	// A long lease lets the backlog phase pause the scheduler without it
	// losing leadership; it changes nothing else.
	sched, err := StartScheduler(ctx, schedPath, api.Addr, "--leader-elect-lease-duration=5m", "--leader-elect-renew-deadline=4m")
	if err != nil {
		return Report{}, err
	}
	defer func() {
		if stopErr := sched.Stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()

	progress("creating %d nodes through the API", wl.nodes)
	nodes := client.For[*corev1.Node](api.Conn)
	if _, err := RunLoad(ctx, wl.nodes, cfg.Concurrency, func(ctx context.Context, i int) error {
		_, err := nodes.Create(ctx, schedNode(i))
		return err
	}); err != nil {
		return Report{}, fmt.Errorf("creating nodes: %w", err)
	}
	if err := sched.WaitMetric(ctx, "bosun_scheduler_cache_nodes", float64(wl.nodes), time.Minute); err != nil {
		return Report{}, err
	}

	pods := client.For[*corev1.Pod](api.Conn)
	list, err := pods.List(ctx, client.ListOptions{Namespace: benchNamespace, PageSize: 1})
	if err != nil {
		return Report{}, err
	}
	watch := &boundWatch{}
	go watch.run(ctx, pods, list.ResourceVersion)

	settle := func(prefix string) error {
		rev, err := deleteEach(ctx, et, prefix, cfg.Concurrency)
		if err != nil {
			return err
		}
		if prefix == schedPodKeys {
			if err := sched.WaitMetric(ctx, "bosun_scheduler_cache_pods", 0, time.Minute); err != nil {
				return err
			}
		}
		if _, err := waitQuiet(ctx, settleLimit, api.PID(), sched.PID(), selfPID()); err != nil {
			return err
		}
		if _, err := et.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			return fmt.Errorf("compacting etcd at %d: %w", rev, err)
		}
		quiet, err := waitQuiet(ctx, settleLimit, api.PID(), sched.PID(), selfPID())
		if err != nil {
			return err
		}
		if !quiet {
			progress("  (processes still busy after %s; continuing)", settleLimit)
		}
		return nil
	}
	runPods := func(round string, n int) (schedRound, map[string]string, error) {
		created := make([]time.Time, n)
		sent := make([]time.Time, n)
		done := watch.expect(round, n)
		before, err := cpuTime(sched.PID())
		if err != nil {
			return schedRound{}, nil, err
		}
		apiBefore, err := cpuTime(api.PID())
		if err != nil {
			return schedRound{}, nil, err
		}
		start := time.Now()
		load, err := RunLoad(ctx, n, cfg.Concurrency, func(ctx context.Context, i int) error {
			sent[i] = time.Now()
			_, err := pods.Create(ctx, wl.pod(round, i))
			created[i] = time.Now()
			return err
		})
		if err != nil {
			return schedRound{}, nil, fmt.Errorf("creating pods: %w", err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			return schedRound{}, nil, ctx.Err()
		case <-time.After(schedBoundLimit):
			bound, _ := watch.results()
			return schedRound{}, nil, fmt.Errorf("round %s: %d of %d pods bound after %s (watch: %v)\nscheduler log:\n%s",
				round, len(bound), n, schedBoundLimit, watch.failed(), sched.Logs())
		}
		after, err := cpuTime(sched.PID())
		if err != nil {
			return schedRound{}, nil, err
		}
		apiAfter, err := cpuTime(api.PID())
		if err != nil {
			return schedRound{}, nil, err
		}
		bound, placement := watch.results()
		r := schedRound{pods: n, create: load.Elapsed, cpuSched: ticks(after - before), cpuAPI: ticks(apiAfter - apiBefore)}
		var last time.Time
		r.latency = make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			t := bound[wl.pod(round, i).Metadata.Name]
			if t.After(last) {
				last = t
			}
			r.latency = append(r.latency, t.Sub(sent[i]))
		}
		r.elapsed = last.Sub(start)
		return r, placement, nil
	}
	rawCAS := func(n int) (Load, error) {
		// Keys exist first; each operation then is the compare-and-set the
		// apiserver's bind runs: if mod_revision(key) == rev then put.
		revs := make([]int64, n)
		value := strings.Repeat("x", 400)
		if _, err := RunLoad(ctx, n, cfg.Concurrency, func(ctx context.Context, i int) error {
			resp, err := et.Client.Put(ctx, fmt.Sprintf("%s%06d", schedRawKeys, i), value)
			if err == nil {
				revs[i] = resp.Header.Revision
			}
			return err
		}); err != nil {
			return Load{}, err
		}
		return RunLoad(ctx, n, cfg.Concurrency, func(ctx context.Context, i int) error {
			key := fmt.Sprintf("%s%06d", schedRawKeys, i)
			resp, err := et.Client.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", revs[i])).
				Then(clientv3.OpPut(key, value)).Commit()
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return fmt.Errorf("compare-and-set of %s failed", key)
			}
			return nil
		})
	}

	warm := min(cfg.Warmup, wl.pods)
	progress("warm-up: %d pods", warm)
	if _, _, err := runPods("w", warm); err != nil {
		return Report{}, err
	}
	if err := settle(schedPodKeys); err != nil {
		return Report{}, err
	}

	var rounds []schedRound
	var raws []Load
	var orders []string
	checked := 0
	for r := 1; r <= cfg.Rounds; r++ {
		rawFirst := r%2 == 1
		order := "scheduler first"
		if rawFirst {
			order = "raw etcd first"
		}
		orders = append(orders, order)
		var sr schedRound
		var raw Load
		for _, side := range []bool{rawFirst, !rawFirst} {
			if side {
				l, err := rawCAS(wl.pods)
				if err != nil {
					return Report{}, fmt.Errorf("raw etcd, round %d: %w", r, err)
				}
				raw = l
				if err := settle(schedRawKeys); err != nil {
					return Report{}, err
				}
				continue
			}
			res, placement, err := runPods(fmt.Sprint(r), wl.pods)
			if err != nil {
				return Report{}, err
			}
			if wl.check != nil {
				if err := wl.check(placement); err != nil {
					return Report{}, fmt.Errorf("round %d: %w", r, err)
				}
				checked++
			}
			sr = res
			if err := settle(schedPodKeys); err != nil {
				return Report{}, err
			}
		}
		rounds, raws = append(rounds, sr), append(raws, raw)
		lat := Summarize(slices.Clone(sr.latency))
		progress("round %d/%d  %-15s  scheduler %6.0f pods/s (creates done in %.2fs, all bound in %.2fs)  raw etcd CAS %6.0f ops/s  create->bound p50 %s p99 %s",
			r, cfg.Rounds, order, sr.podsPerSec(), sr.create.Seconds(), sr.elapsed.Seconds(), raw.OpsPerSec(), ms(lat.P50), ms(lat.P99))
	}
	// Backlog: the pods exist before the scheduler looks, so what is
	// measured is scheduling and binding alone.
	progress("backlog: %d pods created while the scheduler is paused", wl.pods)
	if err := syscall.Kill(sched.PID(), syscall.SIGSTOP); err != nil {
		return Report{}, err
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(sched.PID(), syscall.SIGCONT)
		}
	}()
	done := watch.expect("b", wl.pods)
	if _, err := RunLoad(ctx, wl.pods, cfg.Concurrency, func(ctx context.Context, i int) error {
		_, err := pods.Create(ctx, wl.pod("b", i))
		return err
	}); err != nil {
		return Report{}, fmt.Errorf("creating the backlog: %w", err)
	}
	before, err := cpuTime(sched.PID())
	if err != nil {
		return Report{}, err
	}
	resumed := time.Now()
	if err := syscall.Kill(sched.PID(), syscall.SIGCONT); err != nil {
		return Report{}, err
	}
	stopped = false
	select {
	case <-done:
	case <-ctx.Done():
		return Report{}, ctx.Err()
	case <-time.After(schedBoundLimit):
		return Report{}, fmt.Errorf("backlog not bound within %s\nscheduler log:\n%s", schedBoundLimit, sched.Logs())
	}
	after, err := cpuTime(sched.PID())
	if err != nil {
		return Report{}, err
	}
	bound, placement := watch.results()
	var last time.Time
	for _, t := range bound {
		if t.After(last) {
			last = t
		}
	}
	if wl.check != nil {
		if err := wl.check(placement); err != nil {
			return Report{}, fmt.Errorf("backlog: %w", err)
		}
	}
	backlog := schedRound{pods: wl.pods, elapsed: last.Sub(resumed), cpuSched: ticks(after - before)}
	progress("backlog: %d pods bound in %.2fs: %.0f pods/s", wl.pods, backlog.elapsed.Seconds(), backlog.podsPerSec())
	if err := settle(schedPodKeys); err != nil {
		return Report{}, err
	}
	o := schedOutcome{cfg: cfg, wl: wl, machine: machine, date: started, orders: orders, rounds: rounds, raw: raws, checked: checked,
		backlog: backlog, load: load, logs: warnings(sched.Logs())}
	return Report{Text: o.text(), Markdown: o.markdown()}, nil
}

// loadAverage is the first three fields of /proc/loadavg, "" if unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

// deleteEach deletes every key under prefix, one delete per key, and returns
// the last revision. (One range delete would give every deleted object the
// same revision, which informers that skip revisions already seen do not
// expect from the API.)
func deleteEach(ctx context.Context, et *Etcd, prefix string, concurrency int) (int64, error) {
	resp, err := et.Client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", prefix, err)
	}
	var mu sync.Mutex
	rev := resp.Header.Revision
	_, err = RunLoad(ctx, len(resp.Kvs), concurrency, func(ctx context.Context, i int) error {
		d, err := et.Client.Delete(ctx, string(resp.Kvs[i].Key))
		if err != nil {
			return err
		}
		mu.Lock()
		rev = max(rev, d.Header.Revision)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting %s: %w", prefix, err)
	}
	return rev, nil
}

type schedOutcome struct {
	cfg     Config
	wl      schedWorkload
	machine Machine
	date    time.Time
	orders  []string
	rounds  []schedRound
	raw     []Load
	checked int
	backlog schedRound
	load    string
	logs    []string
}

func (o schedOutcome) podsPerSec() []float64 {
	out := make([]float64, len(o.rounds))
	for i, r := range o.rounds {
		out[i] = r.podsPerSec()
	}
	return out
}

func (o schedOutcome) rawPerSec() []float64 {
	out := make([]float64, len(o.raw))
	for i, l := range o.raw {
		out[i] = l.OpsPerSec()
	}
	return out
}

func (o schedOutcome) ratios() []float64 {
	p, r := o.podsPerSec(), o.rawPerSec()
	out := make([]float64, len(p))
	for i := range p {
		out[i] = p[i] / r[i]
	}
	return out
}

func (o schedOutcome) pooled() Latencies {
	var all []time.Duration
	for _, r := range o.rounds {
		all = append(all, r.latency...)
	}
	return Summarize(all)
}

func (o schedOutcome) cpuPerPod() (sched, api time.Duration) {
	n := 0
	for _, r := range o.rounds {
		sched += r.cpuSched
		api += r.cpuAPI
		n += r.pods
	}
	if n == 0 {
		return 0, 0
	}
	return sched / time.Duration(n), api / time.Duration(n)
}

func (o schedOutcome) verdict() string {
	if Median(o.podsPerSec()) >= o.wl.target {
		return fmt.Sprintf("meets the target (>= %.0f pods/s)", o.wl.target)
	}
	return fmt.Sprintf("misses the target (>= %.0f pods/s)", o.wl.target)
}

func (o schedOutcome) command() string {
	return fmt.Sprintf("bin/bench -only %s -concurrency %d -rounds %d -warmup %d", o.wl.name, o.cfg.Concurrency, o.cfg.Rounds, min(o.cfg.Warmup, o.wl.pods))
}

func (o schedOutcome) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d pods per round on %d simulated nodes, create concurrency %d, %d rounds\n", o.wl.name, o.wl.pods, o.wl.nodes, o.cfg.Concurrency, o.cfg.Rounds)
	fmt.Fprintf(&b, "machine: %s\n\n", o.machine)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\torder\tpods/s\traw etcd CAS ops/s\tratio\tcreates done\tall bound\tp50\tp99\t")
	ratios := o.ratios()
	for i, r := range o.rounds {
		lat := Summarize(slices.Clone(r.latency))
		fmt.Fprintf(w, "%d\t%s\t%.0f\t%.0f\t%.3f\t%.2fs\t%.2fs\t%s\t%s\t\n", i+1, o.orders[i], r.podsPerSec(), o.raw[i].OpsPerSec(), ratios[i],
			r.create.Seconds(), r.elapsed.Seconds(), ms(lat.P50), ms(lat.P99))
	}
	p := o.pooled()
	fmt.Fprintf(w, "median\t\t%.0f\t%.0f\t%.3f\t\t\t%s\t%s\t\n", Median(o.podsPerSec()), Median(o.rawPerSec()), Median(ratios), ms(p.P50), ms(p.P99))
	w.Flush()
	sc, ac := o.cpuPerPod()
	fmt.Fprintf(&b, "\nscheduler: %.0f pods/s, %s; CPU per pod: scheduler %s, apiserver %s\n", Median(o.podsPerSec()), o.verdict(), us(sc), us(ac))
	fmt.Fprintf(&b, "backlog of %d pods created beforehand: bound in %.2fs, %.0f pods/s (scheduler CPU per pod %s)\n",
		o.backlog.pods, o.backlog.elapsed.Seconds(), o.backlog.podsPerSec(), us(o.backlog.cpuSched/time.Duration(max(o.backlog.pods, 1))))
	if len(o.logs) > 0 {
		fmt.Fprintf(&b, "scheduler log:\n  %s\n", strings.Join(o.logs, "\n  "))
	}
	fmt.Fprintf(&b, "reproduce: %s\n", o.command())
	return b.String()
}

func (o schedOutcome) markdown() string {
	var b strings.Builder
	ratios := o.ratios()
	fmt.Fprintf(&b, "## %s: scheduler throughput, %s, %d simulated nodes\n\n", o.wl.name, o.wl.title, o.wl.nodes)
	fmt.Fprintf(&b, "- Date: %s\n", o.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s\n", o.machine)
	if o.load != "" {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) when the run started: %s; other work shared the machine\n", o.load)
	}
	fmt.Fprintf(&b, "- Reproduce: `%s` (after `make build`); `make bench` runs it with the same defaults\n", o.command())
	fmt.Fprintf(&b, "- Parameters: %d pods per round on %d nodes, pods created by %d goroutines, %d measured rounds after %d warm-up pods\n\n",
		o.wl.pods, o.wl.nodes, o.cfg.Concurrency, o.cfg.Rounds, min(o.cfg.Warmup, o.wl.pods))
	fmt.Fprintf(&b, "One etcd %s runs inside the bench process; the apiserver binary (`--insecure --etcd-endpoints=...`) and the scheduler "+
		"binary (`--insecure --apiserver=... --leader-elect-lease-duration=5m --leader-elect-renew-deadline=4m`, otherwise its defaults: leader election on, adaptive percentage of nodes to score, parallelism 16) "+
		"run as child processes. The bench creates %d Node objects through the API (4 cpu, 32Gi, 110 pods each, %d zones in label `%s`), "+
		"waits until the scheduler's cache holds them, and then per round creates the pods through the API: %s. "+
		"Throughput is pods / (time from the first create sent to the last binding seen on a pod watch); "+
		"latency is per pod from its create sent to its binding seen.\n\n",
		"v"+etcdversion.Version, o.wl.nodes, schedZones, zoneLabel, o.wl.describe)
	fmt.Fprintf(&b, "The baseline is raw etcd compare-and-set throughput measured in the same run: the transaction a bind runs "+
		"(if mod_revision(key) == rev then put) of a 400-byte value on %d existing keys, from the same number of goroutines, in the bench process's etcd client. "+
		"Rounds alternate which side goes first; after each side the bench deletes its keys straight from etcd (one delete per key), waits until the scheduler's cache is empty, compacts, and waits until the processes are idle.\n\n", o.wl.pods)
	if o.wl.check != nil {
		fmt.Fprintf(&b, "Every round's placement was checked (%d of %d rounds): no two pods of a round on one node, zones within a skew of 1.\n\n", o.checked, len(o.rounds))
	}
	fmt.Fprintf(&b, "| round | order | pods/s | raw etcd CAS ops/s | ratio | creates done | all bound | create→bound p50 | p99 |\n")
	fmt.Fprintf(&b, "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for i, r := range o.rounds {
		lat := Summarize(slices.Clone(r.latency))
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.0f | %.3f | %.2f s | %.2f s | %s | %s |\n", i+1, o.orders[i], r.podsPerSec(), o.raw[i].OpsPerSec(), ratios[i],
			r.create.Seconds(), r.elapsed.Seconds(), ms(lat.P50), ms(lat.P99))
	}
	p := o.pooled()
	fmt.Fprintf(&b, "| **median** | | **%.0f** | **%.0f** | **%.3f** | | | %s | %s |\n\n", Median(o.podsPerSec()), Median(o.rawPerSec()), Median(ratios), ms(p.P50), ms(p.P99))
	sc, ac := o.cpuPerPod()
	fmt.Fprintf(&b, "CPU time per pod, all rounds (from /proc): scheduler %s, apiserver %s (the bench process holds etcd, the pod creators and the watch).\n\n", us(sc), us(ac))
	fmt.Fprintf(&b, "**Scheduler throughput: %.0f pods/s** (median of rounds), ratio to raw etcd compare-and-set %.3f: %s.\n\n", Median(o.podsPerSec()), Median(ratios), o.verdict())
	fmt.Fprintf(&b, "Backlog, to separate scheduling from pod creation: with the scheduler process stopped (SIGSTOP) the bench created %d more pods, "+
		"then resumed it (SIGCONT) and timed until the last binding was seen: **%.0f pods/s** (%d pods in %.2f s; scheduler CPU per pod %s). "+
		"The scheduler runs with a 5-minute lease throughout so that the pause does not cost it the lease; that changes nothing else.\n",
		o.backlog.pods, o.backlog.podsPerSec(), o.backlog.pods, o.backlog.elapsed.Seconds(), us(o.backlog.cpuSched/time.Duration(max(o.backlog.pods, 1))))
	return b.String()
}

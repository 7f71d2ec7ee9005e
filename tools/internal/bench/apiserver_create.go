package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	etcdversion "go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
)

// APIServerCreate compares the apiserver's pod-create throughput with raw
// etcd create-if-absent transactions of the same bytes, on the same etcd and
// with the same concurrency.
const APIServerCreate = "apiserver-create"

// APIServerCreateTarget is the ratio apiserver/raw the apiserver must reach:
// etcd should be the limit, not the apiserver.
const APIServerCreateTarget = 0.8

const (
	// benchNamespace holds the pods the apiserver side creates.
	benchNamespace = "default"
	// podKeyPrefix is where the apiserver stores the bench's pods: its
	// storage layout (/bosun/<group>/<resource>/<namespace>/<name>) and the
	// bench's name prefix. Warm-up checks it.
	podKeyPrefix = "/bosun/core/pods/" + benchNamespace + "/bench-"
	// rawKeyPrefix is where the raw side writes, outside /bosun/ so that the
	// apiserver's watches never see it.
	rawKeyPrefix = "/bosun-bench/raw/pods/" + benchNamespace + "/bench-"
	// settleLimit bounds the wait for the processes to go idle between runs.
	settleLimit = 15 * time.Second
)

// side is one of the two things compared.
type side struct {
	name   string
	prefix string // etcd prefix of everything it creates
	op     func(names []string) func(ctx context.Context, i int) error
}

// sideResult is one side's measurements over all rounds.
type sideResult struct {
	rounds []Load
	cpu    []cpuUse // per round
}

// cpuUse is the CPU time the two processes used during a run.
type cpuUse struct {
	bench     time.Duration // this process: etcd and the load generators
	apiserver time.Duration
}

// perOp is the CPU time per operation of each process, as text.
func (c cpuUse) perOp(ops int) (bench, apiserver string) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(ops)) }
	return us(c.bench), us(c.apiserver)
}

func (s *sideResult) cpuPerOp() cpuUse {
	var total cpuUse
	ops := 0
	for i, l := range s.rounds {
		total.bench += s.cpu[i].bench
		total.apiserver += s.cpu[i].apiserver
		ops += l.Ops
	}
	if ops == 0 {
		return cpuUse{}
	}
	return cpuUse{bench: total.bench / time.Duration(ops), apiserver: total.apiserver / time.Duration(ops)}
}

func (s *sideResult) opsPerSec() []float64 {
	out := make([]float64, len(s.rounds))
	for i, l := range s.rounds {
		out[i] = l.OpsPerSec()
	}
	return out
}

func (s *sideResult) pooled() Latencies {
	var all []time.Duration
	for _, l := range s.rounds {
		all = append(all, l.Latencies...)
	}
	return Summarize(all)
}

// RunAPIServerCreate runs the apiserver-create benchmark.
func RunAPIServerCreate(ctx context.Context, cfg Config) (rep Report, err error) {
	progress := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }
	machine := ThisMachine()
	started := time.Now()

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

	rawValue, err := proto.Marshal(storedPod("bench-0", time.Now()))
	if err != nil {
		return Report{}, err
	}
	pods := client.For[*corev1.Pod](api.Conn)
	template := requestedPod("")
	podSpec, podLabels := template.Spec, template.Metadata.Labels
	raw := side{name: "raw etcd", prefix: rawKeyPrefix, op: func(names []string) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			key := rawKeyPrefix + names[i]
			resp, err := et.Client.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, string(rawValue))).
				Commit()
			if err != nil {
				return err
			}
			if !resp.Succeeded {
				return fmt.Errorf("key %s exists", key)
			}
			return nil
		}
	}}
	apiserver := side{name: "apiserver", prefix: podKeyPrefix, op: func(names []string) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			// Spec and labels are shared, read-only: only the name varies.
			_, err := pods.Create(ctx, &corev1.Pod{
				Metadata: &metav1.ObjectMeta{Name: "bench-" + names[i], Namespace: benchNamespace, Labels: podLabels},
				Spec:     podSpec,
			})
			return err
		}
	}}

	// settle removes what a run created, straight from etcd, compacts the
	// history away and waits until etcd and the apiserver are idle, so that
	// every run starts from the same state.
	settle := func(s side) error {
		rev, err := et.DeletePrefix(ctx, s.prefix)
		if err != nil {
			return err
		}
		// The apiserver must have seen the deletions before their history goes.
		if _, err := waitQuiet(ctx, settleLimit, api.PID(), selfPID()); err != nil {
			return err
		}
		if _, err := et.Client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			return fmt.Errorf("compacting etcd at %d: %w", rev, err)
		}
		quiet, err := waitQuiet(ctx, settleLimit, api.PID(), selfPID())
		if err != nil {
			return err
		}
		if !quiet {
			progress("  (processes still busy after %s; continuing)", settleLimit)
		}
		return nil
	}
	run := func(s side, round string, n int) (Load, cpuUse, error) {
		names := podNames(round, n)
		before, err := cpuTimes(api.PID())
		if err != nil {
			return Load{}, cpuUse{}, err
		}
		l, err := RunLoad(ctx, n, cfg.Concurrency, s.op(names))
		if err != nil {
			return Load{}, cpuUse{}, fmt.Errorf("%s, round %s: %w", s.name, round, err)
		}
		after, err := cpuTimes(api.PID())
		if err != nil {
			return Load{}, cpuUse{}, err
		}
		return l, cpuUse{bench: after.bench - before.bench, apiserver: after.apiserver - before.apiserver}, nil
	}

	progress("warm-up: %d operations per side", cfg.Warmup)
	for _, s := range []side{raw, apiserver} {
		if _, _, err := run(s, "w", cfg.Warmup); err != nil {
			return Report{}, err
		}
	}
	storedSize, err := checkPodKeys(ctx, et, cfg.Warmup)
	if err != nil {
		return Report{}, err
	}
	for _, s := range []side{raw, apiserver} {
		if err := settle(s); err != nil {
			return Report{}, err
		}
	}

	results := map[string]*sideResult{raw.name: {}, apiserver.name: {}}
	var orders []string
	for r := 1; r <= cfg.Rounds; r++ {
		order := []side{raw, apiserver}
		if r%2 == 0 {
			order = []side{apiserver, raw}
		}
		orders = append(orders, order[0].name+" first")
		for _, s := range order {
			l, cpu, err := run(s, fmt.Sprint(r), cfg.N)
			if err != nil {
				return Report{}, err
			}
			res := results[s.name]
			res.rounds, res.cpu = append(res.rounds, l), append(res.cpu, cpu)
			lat := Summarize(slices.Clone(l.Latencies))
			benchCPU, apiCPU := cpu.perOp(l.Ops)
			progress("round %d/%d  %-9s  %8.0f ops/s  p50 %s  p99 %s  CPU/op: bench process %s, apiserver %s",
				r, cfg.Rounds, s.name, l.OpsPerSec(), ms(lat.P50), ms(lat.P99), benchCPU, apiCPU)
			if err := settle(s); err != nil {
				return Report{}, err
			}
		}
	}

	o := createOutcome{
		cfg: cfg, machine: machine, date: started, orders: orders,
		raw: results[raw.name], api: results[apiserver.name],
		rawValueSize: len(rawValue), storedValueSize: storedSize,
		apiserverWarnings: warnings(api.Logs()),
	}
	return Report{Text: o.text(), Markdown: o.markdown()}, nil
}

// checkPodKeys verifies that the apiserver stored the warm-up pods where the
// bench deletes them, and returns the size of one stored value.
func checkPodKeys(ctx context.Context, et *Etcd, want int) (int, error) {
	n, err := et.CountPrefix(ctx, podKeyPrefix)
	if err != nil {
		return 0, err
	}
	if n != int64(want) {
		return 0, fmt.Errorf("found %d keys under %s after creating %d pods: the apiserver's storage layout changed; update podKeyPrefix", n, podKeyPrefix, want)
	}
	resp, err := et.Client.Get(ctx, podKeyPrefix, clientv3.WithPrefix(), clientv3.WithLimit(1))
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) == 0 {
		return 0, errors.New("no stored pod to inspect")
	}
	return len(resp.Kvs[0].Value), nil
}

// requestedPod is the pod the apiserver side sends: what a user writes.
func requestedPod(name string) *corev1.Pod {
	return &corev1.Pod{
		Metadata: &metav1.ObjectMeta{
			Name:      name,
			Namespace: benchNamespace,
			Labels:    map[string]string{"app": "web", "tier": "frontend", "bosun.dev/bench": APIServerCreate},
		},
		Spec: &corev1.PodSpec{
			Containers: []*corev1.Container{{
				Name:  "web",
				Image: "registry.example.com/shop/web:1.27.3",
				Ports: []*corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080, Protocol: "TCP"},
					{Name: "metrics", ContainerPort: 9090, Protocol: "TCP"},
				},
				Resources: &corev1.ResourceRequirements{
					Requests: map[string]string{"cpu": "100m", "memory": "128Mi"},
					Limits:   map[string]string{"cpu": "500m", "memory": "256Mi"},
				},
			}},
		},
	}
}

// storedPod is the same pod as the apiserver stores it: with the fields the
// server sets (uid, creation timestamp, generation), the defaults it applies
// and the initial status.
func storedPod(name string, now time.Time) *corev1.Pod {
	p := requestedPod(name)
	p.Metadata.Uid = "0b6f1c2e-8a4d-4f7e-9c3b-5d2a1e8f7c60"
	p.Metadata.CreationTimestamp = timestamppb.New(now)
	p.Metadata.Generation = 1
	s := p.Spec
	s.RestartPolicy = "Always"
	s.TerminationGracePeriodSeconds = proto.Int64(30)
	s.DnsPolicy = "ClusterFirst"
	s.SchedulerName = "default-scheduler"
	s.Priority = proto.Int32(0)
	s.EnableServiceLinks = proto.Bool(true)
	c := s.Containers[0]
	c.ImagePullPolicy = "IfNotPresent"
	c.TerminationMessagePath = "/dev/termination-log"
	c.TerminationMessagePolicy = "File"
	p.Status = &corev1.PodStatus{Phase: "Pending", QosClass: "Burstable"}
	return p
}

// podNames returns n distinct names for a round, built before timing starts.
func podNames(round string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%06d", round, i)
	}
	return names
}

// warnings returns the apiserver's log lines other than the expected
// --insecure notice.
func warnings(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "--insecure") {
			out = append(out, line)
		}
	}
	return out
}

// createOutcome is everything the apiserver-create report shows.
type createOutcome struct {
	cfg               Config
	machine           Machine
	date              time.Time
	orders            []string
	raw, api          *sideResult
	rawValueSize      int
	storedValueSize   int
	apiserverWarnings []string
}

func (o createOutcome) ratios() []float64 {
	rawOps, apiOps := o.raw.opsPerSec(), o.api.opsPerSec()
	out := make([]float64, len(rawOps))
	for i := range out {
		out[i] = apiOps[i] / rawOps[i]
	}
	return out
}

func (o createOutcome) verdict() string {
	if Median(o.ratios()) >= APIServerCreateTarget {
		return fmt.Sprintf("meets the target (>= %.2f)", APIServerCreateTarget)
	}
	return fmt.Sprintf("misses the target (>= %.2f)", APIServerCreateTarget)
}

func (o createOutcome) command() string {
	return "bin/bench -only " + APIServerCreate + " " + o.cfg.Args
}

func (o createOutcome) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d creates per side per round, concurrency %d, %d rounds after %d warm-up creates per side\n",
		APIServerCreate, o.cfg.N, o.cfg.Concurrency, o.cfg.Rounds, o.cfg.Warmup)
	fmt.Fprintf(&b, "machine: %s\n\n", o.machine)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\torder\traw etcd ops/s\tapiserver ops/s\tratio\traw p50\traw p99\tapiserver p50\tapiserver p99\t")
	ratios := o.ratios()
	for i := range o.raw.rounds {
		rl, al := Summarize(slices.Clone(o.raw.rounds[i].Latencies)), Summarize(slices.Clone(o.api.rounds[i].Latencies))
		fmt.Fprintf(w, "%d\t%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t\n", i+1, o.orders[i],
			o.raw.rounds[i].OpsPerSec(), o.api.rounds[i].OpsPerSec(), ratios[i], ms(rl.P50), ms(rl.P99), ms(al.P50), ms(al.P99))
	}
	rp, ap := o.raw.pooled(), o.api.pooled()
	fmt.Fprintf(w, "median\t\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t\n", Median(o.raw.opsPerSec()), Median(o.api.opsPerSec()),
		Median(ratios), ms(rp.P50), ms(rp.P99), ms(ap.P50), ms(ap.P99))
	w.Flush()
	fmt.Fprintf(&b, "\n(median row: latencies pooled over all rounds)\n")
	fmt.Fprintf(&b, "ratio apiserver/raw etcd: %.2f, %s\n", Median(ratios), o.verdict())
	rc, ac := o.raw.cpuPerOp(), o.api.cpuPerOp()
	fmt.Fprintf(&b, "CPU per operation (bench process = etcd + load generators):\n")
	fmt.Fprintf(&b, "  raw etcd:  bench process %s, apiserver %s\n", us(rc.bench), us(rc.apiserver))
	fmt.Fprintf(&b, "  apiserver: bench process %s, apiserver %s\n", us(ac.bench), us(ac.apiserver))
	fmt.Fprintf(&b, "value size: raw %d bytes, stored by the apiserver %d bytes\n", o.rawValueSize, o.storedValueSize)
	if len(o.apiserverWarnings) > 0 {
		fmt.Fprintf(&b, "apiserver log:\n  %s\n", strings.Join(o.apiserverWarnings, "\n  "))
	}
	fmt.Fprintf(&b, "reproduce: %s\n", o.command())
	return b.String()
}

func (o createOutcome) markdown() string {
	var b strings.Builder
	ratios := o.ratios()
	fmt.Fprintf(&b, "## apiserver-create: pod creates through the apiserver against raw etcd\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", o.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s\n", o.machine)
	reproduce := "`" + o.command() + "` (after `make build`)"
	if o.cfg.Defaults {
		reproduce += "; `make bench` runs it with the same defaults"
	}
	fmt.Fprintf(&b, "- Reproduce: %s\n", reproduce)
	fmt.Fprintf(&b, "- Parameters: %d creates per side per round, concurrency %d, %d measured rounds after %d warm-up creates per side\n\n",
		o.cfg.N, o.cfg.Concurrency, o.cfg.Rounds, o.cfg.Warmup)

	fmt.Fprintf(&b, "One etcd %s runs inside the bench process (data in a temporary directory, default settings); "+
		"the apiserver binary runs as a child process against it (`--insecure --etcd-endpoints=... --log-level warn`, REST gateway off). "+
		"Both sides use the same %d goroutines:\n\n", "v"+etcdversion.Version, o.cfg.Concurrency)
	fmt.Fprintf(&b, "- **raw etcd**: one shared etcd client; each operation is the transaction the apiserver runs for a create "+
		"(if create_revision(key) == 0 then put) of a pod already encoded as the apiserver stores it "+
		"(%d bytes; the apiserver stored %d); only the key varies.\n", o.rawValueSize, o.storedValueSize)
	fmt.Fprintf(&b, "- **apiserver**: one shared gRPC connection; each operation is `CreatePod` in namespace `default` "+
		"(one container with image, two ports, cpu/memory requests and limits, three labels); only the name varies. "+
		"The apiserver defaults, validates, checks the namespace and runs that same transaction.\n\n")
	fmt.Fprintf(&b, "Rounds alternate which side goes first. After each side's run the bench deletes its keys straight from etcd "+
		"(one range delete on its prefix), compacts etcd at that revision and waits until both processes are idle, "+
		"so every run starts from the same state size.\n\n")

	fmt.Fprintf(&b, "| round | order | raw etcd ops/s | apiserver ops/s | ratio | raw p50 | raw p99 | apiserver p50 | apiserver p99 |\n")
	fmt.Fprintf(&b, "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for i := range o.raw.rounds {
		rl, al := Summarize(slices.Clone(o.raw.rounds[i].Latencies)), Summarize(slices.Clone(o.api.rounds[i].Latencies))
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.0f | %.2f | %s | %s | %s | %s |\n", i+1, o.orders[i],
			o.raw.rounds[i].OpsPerSec(), o.api.rounds[i].OpsPerSec(), ratios[i], ms(rl.P50), ms(rl.P99), ms(al.P50), ms(al.P99))
	}
	rp, ap := o.raw.pooled(), o.api.pooled()
	fmt.Fprintf(&b, "| **median** | | **%.0f** | **%.0f** | **%.2f** | %s | %s | %s | %s |\n\n", Median(o.raw.opsPerSec()), Median(o.api.opsPerSec()),
		Median(ratios), ms(rp.P50), ms(rp.P99), ms(ap.P50), ms(ap.P99))
	fmt.Fprintf(&b, "Throughputs in the median row are medians of the rounds; its latencies are percentiles of every measured operation. "+
		"Latency is per operation as seen by the caller.\n\n")
	rc, ac := o.raw.cpuPerOp(), o.api.cpuPerOp()
	fmt.Fprintf(&b, "CPU time per operation, all rounds (from /proc; the bench process holds etcd and the load generators):\n\n")
	fmt.Fprintf(&b, "| side | bench process | apiserver process | total |\n|---|--:|--:|--:|\n")
	fmt.Fprintf(&b, "| raw etcd | %s | %s | %s |\n", us(rc.bench), us(rc.apiserver), us(rc.bench+rc.apiserver))
	fmt.Fprintf(&b, "| apiserver | %s | %s | %s |\n\n", us(ac.bench), us(ac.apiserver), us(ac.bench+ac.apiserver))
	fmt.Fprintf(&b, "**Ratio apiserver / raw etcd: %.2f** (median of the per-round ratios): %s.\n", Median(ratios), o.verdict())
	return b.String()
}

// us formats a duration in whole microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	batchv1 "bosun.dev/gen/bosun/batch/v1"
	coordinationv1 "bosun.dev/gen/bosun/coordination/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
)

// columns are how one kind prints as a table row.
type columns struct {
	// header follows NAME; wide is appended with -o wide.
	header, wide []string
	// cells returns the row after the name: len(header) cells, then
	// len(wide) more.
	cells func(obj api.Object, now time.Time) []string
}

// columnsFor returns the table layout of a kind, as kubectl prints it.
func columnsFor(k *api.Kind) columns {
	switch k.Kind {
	case "Pod":
		return columns{[]string{"READY", "STATUS", "RESTARTS", "AGE"}, []string{"IP", "NODE"}, podCells}
	case "Deployment":
		return columns{[]string{"READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, []string{"CONTAINERS", "IMAGES", "SELECTOR"}, deploymentCells}
	case "ReplicaSet":
		return columns{[]string{"DESIRED", "CURRENT", "READY", "AGE"}, []string{"CONTAINERS", "IMAGES", "SELECTOR"}, replicaSetCells}
	case "Service":
		return columns{[]string{"TYPE", "CLUSTER-IP", "PORT(S)", "AGE"}, []string{"SELECTOR"}, serviceCells}
	case "Node":
		return columns{[]string{"STATUS", "ROLES", "AGE", "VERSION"}, []string{"INTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"}, nodeCells}
	case "Namespace":
		return columns{[]string{"STATUS", "AGE"}, nil, namespaceCells}
	case "Job":
		return columns{[]string{"COMPLETIONS", "AGE"}, []string{"CONTAINERS", "IMAGES", "SELECTOR"}, jobCells}
	case "StatefulSet":
		return columns{[]string{"READY", "AGE"}, []string{"CONTAINERS", "IMAGES"}, statefulSetCells}
	case "DaemonSet":
		return columns{[]string{"DESIRED", "CURRENT", "READY", "AGE"}, []string{"CONTAINERS", "IMAGES", "SELECTOR"}, daemonSetCells}
	case "Endpoints":
		return columns{[]string{"ENDPOINTS", "AGE"}, nil, endpointsCells}
	case "ConfigMap":
		return columns{[]string{"DATA", "AGE"}, nil, configMapCells}
	case "Secret":
		return columns{[]string{"TYPE", "DATA", "AGE"}, nil, secretCells}
	case "Lease":
		return columns{[]string{"HOLDER", "AGE"}, nil, leaseCells}
	default:
		return columns{[]string{"AGE"}, nil, func(obj api.Object, now time.Time) []string {
			return []string{age(obj.GetMetadata().GetCreationTimestamp(), now)}
		}}
	}
}

// tableOptions say how rows print.
type tableOptions struct {
	wide          bool
	withNamespace bool // -A: a NAMESPACE column first
	withKind      bool // several kinds: names as "pod/web"
}

// columnPadding separates table columns, as in kubectl.
const columnPadding = 3

// tablePrinter writes rows of one kind: through a tabwriter until the first
// flush, then (for watches) one padded line at a time, keeping the widths
// of the columns printed so far.
type tablePrinter struct {
	kind    *api.Kind
	cols    columns
	opts    tableOptions
	w       io.Writer
	tw      *tabwriter.Writer
	now     func() time.Time
	widths  []int
	flushed bool
}

func newTablePrinter(w io.Writer, k *api.Kind, opts tableOptions, now func() time.Time) *tablePrinter {
	return &tablePrinter{
		kind: k, cols: columnsFor(k), opts: opts, now: now, w: w,
		tw: tabwriter.NewWriter(w, 0, 8, columnPadding, ' ', 0),
	}
}

func (p *tablePrinter) writeCells(cells []string) {
	for i, c := range cells {
		n := utf8.RuneCountInString(c)
		if i >= len(p.widths) {
			p.widths = append(p.widths, n)
		} else if n > p.widths[i] {
			p.widths[i] = n
		}
	}
	if !p.flushed {
		fmt.Fprintln(p.tw, strings.Join(cells, "\t"))
		return
	}
	var b strings.Builder
	for i, c := range cells {
		b.WriteString(c)
		if i < len(cells)-1 {
			b.WriteString(strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(c)+columnPadding))
		}
	}
	fmt.Fprintln(p.w, b.String())
}

// header writes the column titles.
func (p *tablePrinter) header() {
	var cells []string
	if p.opts.withNamespace {
		cells = append(cells, "NAMESPACE")
	}
	if p.kind.Kind == "Event" {
		cells = append(cells, eventHeader...)
	} else {
		cells = append(cells, "NAME")
		cells = append(cells, p.cols.header...)
		if p.opts.wide {
			cells = append(cells, p.cols.wide...)
		}
	}
	p.writeCells(cells)
}

// row writes one object's row.
func (p *tablePrinter) row(obj api.Object) {
	var cells []string
	if p.opts.withNamespace {
		cells = append(cells, obj.GetMetadata().GetNamespace())
	}
	if ev, ok := obj.(*corev1.Event); ok {
		cells = append(cells, eventCells(ev, p.now())...)
	} else {
		name := obj.GetMetadata().GetName()
		if p.opts.withKind {
			name = qualifiedKind(p.kind) + "/" + name
		}
		cells = append(cells, name)
		all := p.cols.cells(obj, p.now())
		n := len(p.cols.header)
		if p.opts.wide {
			n += len(p.cols.wide)
		}
		cells = append(cells, all[:n]...)
	}
	p.writeCells(cells)
}

// flush writes out what the tabwriter holds; later rows print at once.
func (p *tablePrinter) flush() error {
	if p.flushed {
		return nil
	}
	p.flushed = true
	return p.tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func podCells(obj api.Object, now time.Time) []string {
	pod := obj.(*corev1.Pod)
	ready, restarts := 0, int32(0)
	for _, cs := range pod.GetStatus().GetContainerStatuses() {
		if cs.GetReady() {
			ready++
		}
		restarts += cs.GetRestartCount()
	}
	return []string{
		fmt.Sprintf("%d/%d", ready, len(pod.GetSpec().GetContainers())),
		podStatus(pod),
		fmt.Sprint(restarts),
		age(pod.GetMetadata().GetCreationTimestamp(), now),
		orNone(pod.GetStatus().GetPodIp()),
		orNone(pod.GetSpec().GetNodeName()),
	}
}

// podStatus is kubectl's STATUS: the most telling of the pod's reason,
// its containers' waiting or terminated reasons, and its phase.
func podStatus(pod *corev1.Pod) string {
	st := pod.GetStatus()
	reason := st.GetPhase()
	if st.GetReason() != "" {
		reason = st.GetReason()
	}
	for i, cs := range st.GetInitContainerStatuses() {
		switch {
		case cs.GetState().GetTerminated() != nil && cs.GetState().GetTerminated().GetExitCode() == 0:
			continue
		case cs.GetState().GetTerminated() != nil:
			t := cs.GetState().GetTerminated()
			if t.GetReason() != "" {
				reason = "Init:" + t.GetReason()
			} else {
				reason = fmt.Sprintf("Init:ExitCode:%d", t.GetExitCode())
			}
		case cs.GetState().GetWaiting() != nil && cs.GetState().GetWaiting().GetReason() != "" && cs.GetState().GetWaiting().GetReason() != "PodInitializing":
			reason = "Init:" + cs.GetState().GetWaiting().GetReason()
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.GetSpec().GetInitContainers()))
		}
		if strings.HasPrefix(reason, "Init:") {
			break
		}
	}
	if !strings.HasPrefix(reason, "Init:") {
		running := false
		for _, cs := range st.GetContainerStatuses() {
			state := cs.GetState()
			switch {
			case state.GetWaiting() != nil && state.GetWaiting().GetReason() != "":
				reason = state.GetWaiting().GetReason()
			case state.GetTerminated() != nil && state.GetTerminated().GetReason() != "":
				reason = state.GetTerminated().GetReason()
			case state.GetTerminated() != nil && state.GetTerminated().GetSignal() != 0:
				reason = fmt.Sprintf("Signal:%d", state.GetTerminated().GetSignal())
			case state.GetTerminated() != nil:
				reason = fmt.Sprintf("ExitCode:%d", state.GetTerminated().GetExitCode())
			case cs.GetReady() && state.GetRunning() != nil:
				running = true
			}
		}
		if reason == "Completed" && running {
			reason = "Running"
		}
	}
	if pod.GetMetadata().GetDeletionTimestamp() != nil {
		reason = "Terminating"
	}
	if reason == "" {
		reason = "Pending"
	}
	return reason
}

func templateCells(t *corev1.PodTemplateSpec) (containers, images string) {
	var names, imgs []string
	for _, c := range t.GetSpec().GetContainers() {
		names = append(names, c.GetName())
		imgs = append(imgs, c.GetImage())
	}
	return orNone(strings.Join(names, ",")), orNone(strings.Join(imgs, ","))
}

func selectorString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return orNone(strings.Join(parts, ","))
}

// replicasOrOne is a spec's replicas, 1 when unset as the server defaults it.
func replicasOrOne(spec interface{ GetReplicas() int32 }, set bool) int32 {
	if !set {
		return 1
	}
	return spec.GetReplicas()
}

func deploymentCells(obj api.Object, now time.Time) []string {
	d := obj.(*appsv1.Deployment)
	st := d.GetStatus()
	c, i := templateCells(d.GetSpec().GetTemplate())
	return []string{
		fmt.Sprintf("%d/%d", st.GetReadyReplicas(), replicasOrOne(d.GetSpec(), d.GetSpec() != nil && d.GetSpec().Replicas != nil)),
		fmt.Sprint(st.GetUpdatedReplicas()),
		fmt.Sprint(st.GetAvailableReplicas()),
		age(d.GetMetadata().GetCreationTimestamp(), now),
		c, i, selectorString(d.GetSpec().GetSelector().GetMatchLabels()),
	}
}

func replicaSetCells(obj api.Object, now time.Time) []string {
	rs := obj.(*appsv1.ReplicaSet)
	c, i := templateCells(rs.GetSpec().GetTemplate())
	return []string{
		fmt.Sprint(replicasOrOne(rs.GetSpec(), rs.GetSpec() != nil && rs.GetSpec().Replicas != nil)),
		fmt.Sprint(rs.GetStatus().GetReplicas()),
		fmt.Sprint(rs.GetStatus().GetReadyReplicas()),
		age(rs.GetMetadata().GetCreationTimestamp(), now),
		c, i, selectorString(rs.GetSpec().GetSelector().GetMatchLabels()),
	}
}

func serviceCells(obj api.Object, now time.Time) []string {
	svc := obj.(*corev1.Service)
	spec := svc.GetSpec()
	typ := spec.GetType()
	if typ == "" {
		typ = "ClusterIP"
	}
	var ports []string
	for _, p := range spec.GetPorts() {
		proto := p.GetProtocol()
		if proto == "" {
			proto = "TCP"
		}
		if p.GetNodePort() != 0 {
			ports = append(ports, fmt.Sprintf("%d:%d/%s", p.GetPort(), p.GetNodePort(), proto))
		} else {
			ports = append(ports, fmt.Sprintf("%d/%s", p.GetPort(), proto))
		}
	}
	return []string{
		typ, orNone(spec.GetClusterIp()), orNone(strings.Join(ports, ",")),
		age(svc.GetMetadata().GetCreationTimestamp(), now),
		selectorString(spec.GetSelector()),
	}
}

// nodeStatus is kubectl's node STATUS: the Ready condition, and
// SchedulingDisabled when the node is cordoned.
func nodeStatus(n *corev1.Node) string {
	status := "Unknown"
	for _, c := range n.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			switch c.GetStatus() {
			case "True":
				status = "Ready"
			case "False":
				status = "NotReady"
			}
		}
	}
	if n.GetSpec().GetUnschedulable() {
		status += ",SchedulingDisabled"
	}
	return status
}

const nodeRolePrefix = "node-role.kubernetes.io/"

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k, v := range n.GetMetadata().GetLabels() {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix) && k != nodeRolePrefix:
			roles = append(roles, strings.TrimPrefix(k, nodeRolePrefix))
		case k == "kubernetes.io/role" && v != "":
			roles = append(roles, v)
		}
	}
	sort.Strings(roles)
	return orNone(strings.Join(roles, ","))
}

func nodeCells(obj api.Object, now time.Time) []string {
	n := obj.(*corev1.Node)
	var internalIP string
	for _, a := range n.GetStatus().GetAddresses() {
		if a.GetType() == "InternalIP" && internalIP == "" {
			internalIP = a.GetAddress()
		}
	}
	info := n.GetStatus().GetNodeInfo()
	return []string{
		nodeStatus(n), nodeRoles(n), age(n.GetMetadata().GetCreationTimestamp(), now), orNone(info.GetKubeletVersion()),
		orNone(internalIP), orNone(info.GetOsImage()), orNone(info.GetKernelVersion()), orNone(info.GetContainerRuntimeVersion()),
	}
}

func namespaceCells(obj api.Object, now time.Time) []string {
	ns := obj.(*corev1.Namespace)
	phase := ns.GetStatus().GetPhase()
	if phase == "" {
		phase = "Active"
	}
	return []string{phase, age(ns.GetMetadata().GetCreationTimestamp(), now)}
}

func jobCells(obj api.Object, now time.Time) []string {
	j := obj.(*batchv1.Job)
	completions := "1"
	if j.GetSpec() != nil && j.GetSpec().Completions != nil {
		completions = fmt.Sprint(j.GetSpec().GetCompletions())
	}
	c, i := templateCells(j.GetSpec().GetTemplate())
	return []string{
		fmt.Sprintf("%d/%s", j.GetStatus().GetSucceeded(), completions),
		age(j.GetMetadata().GetCreationTimestamp(), now),
		c, i, selectorString(j.GetSpec().GetSelector().GetMatchLabels()),
	}
}

func statefulSetCells(obj api.Object, now time.Time) []string {
	s := obj.(*appsv1.StatefulSet)
	c, i := templateCells(s.GetSpec().GetTemplate())
	return []string{
		fmt.Sprintf("%d/%d", s.GetStatus().GetReadyReplicas(), replicasOrOne(s.GetSpec(), s.GetSpec() != nil && s.GetSpec().Replicas != nil)),
		age(s.GetMetadata().GetCreationTimestamp(), now),
		c, i,
	}
}

func daemonSetCells(obj api.Object, now time.Time) []string {
	d := obj.(*appsv1.DaemonSet)
	st := d.GetStatus()
	c, i := templateCells(d.GetSpec().GetTemplate())
	return []string{
		fmt.Sprint(st.GetDesiredNumberScheduled()), fmt.Sprint(st.GetCurrentNumberScheduled()), fmt.Sprint(st.GetNumberReady()),
		age(d.GetMetadata().GetCreationTimestamp(), now),
		c, i, selectorString(d.GetSpec().GetSelector().GetMatchLabels()),
	}
}

// maxEndpoints is how many addresses the ENDPOINTS column shows.
const maxEndpoints = 3

func endpointsCells(obj api.Object, now time.Time) []string {
	ep := obj.(*corev1.Endpoints)
	var list []string
	total := 0
	for _, ss := range ep.GetSubsets() {
		for _, a := range ss.GetAddresses() {
			if len(ss.GetPorts()) == 0 {
				total++
				if len(list) < maxEndpoints {
					list = append(list, a.GetIp())
				}
				continue
			}
			for _, p := range ss.GetPorts() {
				total++
				if len(list) < maxEndpoints {
					list = append(list, fmt.Sprintf("%s:%d", a.GetIp(), p.GetPort()))
				}
			}
		}
	}
	s := orNone(strings.Join(list, ","))
	if total > len(list) {
		s += fmt.Sprintf(" + %d more...", total-len(list))
	}
	return []string{s, age(ep.GetMetadata().GetCreationTimestamp(), now)}
}

func configMapCells(obj api.Object, now time.Time) []string {
	cm := obj.(*corev1.ConfigMap)
	return []string{fmt.Sprint(len(cm.GetData()) + len(cm.GetBinaryData())), age(cm.GetMetadata().GetCreationTimestamp(), now)}
}

func secretCells(obj api.Object, now time.Time) []string {
	s := obj.(*corev1.Secret)
	keys := map[string]bool{}
	for k := range s.GetData() {
		keys[k] = true
	}
	for k := range s.GetStringData() {
		keys[k] = true
	}
	typ := s.GetType()
	if typ == "" {
		typ = "Opaque"
	}
	return []string{typ, fmt.Sprint(len(keys)), age(s.GetMetadata().GetCreationTimestamp(), now)}
}

func leaseCells(obj api.Object, now time.Time) []string {
	l := obj.(*coordinationv1.Lease)
	return []string{orNone(l.GetSpec().GetHolderIdentity()), age(l.GetMetadata().GetCreationTimestamp(), now)}
}

var eventHeader = []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}

func eventCells(ev *corev1.Event, now time.Time) []string {
	last := ev.GetLastTimestamp()
	if last == nil {
		last = ev.GetEventTime()
	}
	if last == nil {
		last = ev.GetMetadata().GetCreationTimestamp()
	}
	obj := ev.GetInvolvedObject()
	return []string{
		age(last, now), ev.GetType(), ev.GetReason(),
		strings.ToLower(obj.GetKind()) + "/" + obj.GetName(),
		strings.TrimSpace(ev.GetMessage()),
	}
}

package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/manifest"
)

func (s *session) newDescribeCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "describe TYPE NAME... | TYPE/NAME...",
		Short:   "Show an object in detail, with its events",
		Example: "  bosun describe pod web-5d4f-x2x9k\n  bosun describe deploy/web",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ra, err := parseResourceArgs(args)
			if err != nil {
				return err
			}
			if len(ra.refs) == 0 {
				return fmt.Errorf("describe needs the name of an object, e.g. bosun describe %s NAME", args[0])
			}
			conn, err := s.connect()
			if err != nil {
				return err
			}
			ns, err := s.namespace()
			if err != nil {
				return err
			}
			failed := false
			for i, ref := range ra.refs {
				objNS := ns
				if !ref.kind.Namespaced {
					objNS = ""
				}
				obj, err := client.ForKind(conn, ref.kind).Get(cmd.Context(), objNS, ref.name)
				if err != nil {
					fmt.Fprintln(s.deps.Stderr, formatError(err))
					failed = true
					continue
				}
				if i > 0 {
					fmt.Fprintln(s.deps.Stdout)
				}
				events, err := s.eventsFor(cmd.Context(), conn, ref.kind, obj)
				if err != nil {
					return err
				}
				if err := describeObject(s.deps.Stdout, ref.kind, obj, events, s.now()); err != nil {
					return err
				}
			}
			if failed {
				return errReported
			}
			return nil
		},
	}
}

// eventsFor lists the events about obj: by field selector when the server
// supports it, else by filtering the namespace's events.
func (s *session) eventsFor(ctx context.Context, conn Conn, k *api.Kind, obj api.Object) ([]*corev1.Event, error) {
	md := obj.GetMetadata()
	events := client.For[*corev1.Event](conn)
	selector := "involvedObject.name=" + md.GetName()
	if k.Namespaced {
		selector += ",involvedObject.namespace=" + md.GetNamespace()
	}
	items, _, err := events.ListAll(ctx, client.ListOptions{Namespace: md.GetNamespace(), FieldSelector: selector})
	if err != nil {
		// Older servers may not know the field; filter here instead.
		items, _, err = events.ListAll(ctx, client.ListOptions{Namespace: md.GetNamespace()})
		if err != nil {
			return nil, nil // events are a courtesy: the object itself was found
		}
	}
	var out []*corev1.Event
	for _, ev := range items {
		ref := ev.GetInvolvedObject()
		if ref.GetName() != md.GetName() || ref.GetKind() != "" && ref.GetKind() != k.Kind {
			continue
		}
		if ref.GetUid() != "" && md.GetUid() != "" && ref.GetUid() != md.GetUid() {
			continue
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return eventTime(out[i]).Before(eventTime(out[j]))
	})
	return out, nil
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case ev.GetLastTimestamp() != nil:
		return ev.GetLastTimestamp().AsTime()
	case ev.GetEventTime() != nil:
		return ev.GetEventTime().AsTime()
	default:
		return ev.GetMetadata().GetCreationTimestamp().AsTime()
	}
}

// describeObject writes the sections of kubectl describe: metadata, labels,
// annotations, a summary, the desired state, the status, its conditions and
// the events.
func describeObject(w io.Writer, k *api.Kind, obj api.Object, events []*corev1.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	md := obj.GetMetadata()
	fmt.Fprintf(tw, "Name:\t%s\n", md.GetName())
	if k.Namespaced {
		fmt.Fprintf(tw, "Namespace:\t%s\n", md.GetNamespace())
	}
	fmt.Fprintf(tw, "Kind:\t%s\n", k)
	writeMap(tw, "Labels", md.GetLabels())
	writeMap(tw, "Annotations", md.GetAnnotations())
	if ts := md.GetCreationTimestamp(); ts != nil {
		fmt.Fprintf(tw, "CreationTimestamp:\t%s (%s ago)\n", ts.AsTime().UTC().Format(time.RFC1123Z), age(ts, now))
	}
	if ts := md.GetDeletionTimestamp(); ts != nil {
		fmt.Fprintf(tw, "DeletionTimestamp:\t%s\n", ts.AsTime().UTC().Format(time.RFC1123Z))
	}
	for _, ref := range md.GetOwnerReferences() {
		fmt.Fprintf(tw, "Controlled By:\t%s/%s\n", ref.GetKind(), ref.GetName())
	}
	if len(md.GetFinalizers()) > 0 {
		fmt.Fprintf(tw, "Finalizers:\t%s\n", strings.Join(md.GetFinalizers(), ", "))
	}
	for _, line := range summary(k, obj, now) {
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	encoded, err := manifest.Encode(obj)
	if err != nil {
		return err
	}
	var fields []string
	for f := range encoded {
		switch f {
		case "apiVersion", "kind", "metadata", "status":
		default:
			fields = append(fields, f)
		}
	}
	sort.Strings(fields)
	for _, f := range fields {
		if err := writeSection(w, strings.ToUpper(f[:1])+f[1:], encoded[f]); err != nil {
			return err
		}
	}
	var conditions []any
	if status, ok := encoded["status"].(map[string]any); ok {
		conditions, _ = status["conditions"].([]any)
		delete(status, "conditions")
		if len(status) > 0 {
			if err := writeSection(w, "Status", status); err != nil {
				return err
			}
		}
	}
	if len(conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		ctw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		if k.Kind == "Node" {
			// A node's conditions say since when: with the events below,
			// its history of readiness.
			fmt.Fprintln(ctw, "  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
			fmt.Fprintln(ctw, "  ----\t------\t-----------------\t------------------\t------\t-------")
		} else {
			fmt.Fprintln(ctw, "  Type\tStatus\tReason\tMessage")
			fmt.Fprintln(ctw, "  ----\t------\t------\t-------")
		}
		for _, c := range conditions {
			cm, _ := c.(map[string]any)
			if k.Kind == "Node" {
				fmt.Fprintf(ctw, "  %v\t%v\t%v\t%v\t%v\t%v\n", cm["type"], cm["status"], orDash(cm["lastHeartbeatTime"]),
					orDash(cm["lastTransitionTime"]), orDash(cm["reason"]), orDash(cm["message"]))
				continue
			}
			fmt.Fprintf(ctw, "  %v\t%v\t%v\t%v\n", cm["type"], cm["status"], orDash(cm["reason"]), orDash(cm["message"]))
		}
		if err := ctw.Flush(); err != nil {
			return err
		}
	}
	writeEvents(w, events, now)
	return nil
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}

func writeMap(w io.Writer, title string, m map[string]string) {
	if len(m) == 0 {
		fmt.Fprintf(w, "%s:\t<none>\n", title)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			fmt.Fprintf(w, "%s:\t%s=%s\n", title, k, m[k])
		} else {
			fmt.Fprintf(w, "\t%s=%s\n", k, m[k])
		}
	}
}

// writeSection writes a field as an indented YAML block under its title.
func writeSection(w io.Writer, title string, v any) error {
	out, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	return nil
}

// summary is the few lines that say most about an object of some kinds.
func summary(k *api.Kind, obj api.Object, now time.Time) []string {
	switch k.Kind {
	case "Pod":
		c := podCells(obj, now)
		pod := obj.(*corev1.Pod)
		return []string{
			"Node:\t" + c[5],
			"Status:\t" + podStatus(pod),
			"IP:\t" + c[4],
			"Ready:\t" + c[0],
			"Restarts:\t" + c[2],
		}
	case "Node":
		n := obj.(*corev1.Node)
		var taints []string
		for _, t := range n.GetSpec().GetTaints() {
			kv := t.GetKey()
			if t.GetValue() != "" {
				kv += "=" + t.GetValue()
			}
			taints = append(taints, kv+":"+t.GetEffect())
		}
		if len(taints) == 0 {
			taints = []string{"<none>"}
		}
		return []string{"Status:\t" + nodeStatus(n), "Roles:\t" + nodeRoles(n), "Taints:\t" + strings.Join(taints, ", "),
			fmt.Sprintf("Unschedulable:\t%t", n.GetSpec().GetUnschedulable())}
	case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Service", "Namespace", "Lease", "Endpoints":
		cols := columnsFor(k)
		cells := cols.cells(obj, now)
		var out []string
		for i, h := range cols.header {
			if h == "AGE" {
				continue
			}
			out = append(out, titleCase(h)+":\t"+cells[i])
		}
		return out
	}
	return nil
}

func titleCase(header string) string {
	words := strings.Fields(strings.ToLower(header))
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func writeEvents(w io.Writer, events []*corev1.Event, now time.Time) {
	if len(events) == 0 {
		fmt.Fprintln(w, "Events:\t<none>")
		return
	}
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t----\t----\t-------")
	for _, ev := range events {
		from := ev.GetSource().GetComponent()
		if from == "" {
			from = ev.GetReportingComponent()
		}
		a := age(ev.GetLastTimestamp(), now)
		if ev.GetCount() > 1 && ev.GetFirstTimestamp() != nil {
			a = fmt.Sprintf("%s (x%d over %s)", a, ev.GetCount(), age(ev.GetFirstTimestamp(), now))
		}
		if ev.GetLastTimestamp() == nil {
			a = age(ev.GetEventTime(), now)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", ev.GetType(), ev.GetReason(), a, orDashString(from), strings.TrimSpace(ev.GetMessage()))
	}
	tw.Flush()
}

func orDashString(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

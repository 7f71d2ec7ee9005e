package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/manifest"
)

// getOptions are the flags of get.
type getOptions struct {
	allNamespaces bool
	labels        string
	fields        string
	output        string
	watch         bool
}

func (s *session) newGetCommand() *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "List objects, or show some by name",
		Long: "Get prints objects as a table, or as manifests with -o yaml|json that apply back\n" +
			"unchanged. TYPE is a resource name, singular or short name (po, deploy, svc,\n" +
			"no, ns, rs, ds, sts, cm, ev, ep, ...) or all.",
		Example: "  bosun get pods\n  bosun get deploy web -o yaml\n  bosun get po -A -l app=web -o wide\n  bosun get pods -w",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.output {
			case "", "wide", "yaml", "json", "name":
			default:
				return fmt.Errorf("unknown output format %q: use wide, yaml, json or name", o.output)
			}
			ra, err := parseResourceArgs(args)
			if err != nil {
				return err
			}
			return s.get(cmd.Context(), ra, o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&o.labels, "selector", "l", "", "label selector, e.g. app=web,tier in (a,b)")
	f.StringVar(&o.fields, "field-selector", "", "field selector, e.g. spec.nodeName=node-1")
	f.StringVarP(&o.output, "output", "o", "", "output format: wide, yaml, json or name")
	f.BoolVarP(&o.watch, "watch", "w", false, "after listing, print every change")
	return cmd
}

func (s *session) get(ctx context.Context, ra *resourceArgs, o getOptions) error {
	conn, err := s.connect()
	if err != nil {
		return err
	}
	ns, err := s.namespace()
	if err != nil {
		return err
	}
	if o.watch && len(ra.kinds) != 1 {
		return fmt.Errorf("watch is only supported on a single resource type")
	}
	multi := len(ra.kinds) > 1
	var (
		all       []api.Object // for -o yaml|json: printed together at the end
		failed    bool
		printedAt int // tables printed so far
		listRV    string
	)
	for _, k := range ra.kinds {
		rc := client.ForKind(conn, k)
		listNS := ns
		if o.allNamespaces || !k.Namespaced {
			listNS = ""
		}
		var objs []api.Object
		var names []objectRef
		for _, ref := range ra.refs {
			if ref.kind == k {
				names = append(names, ref)
			}
		}
		if len(names) > 0 {
			for _, ref := range names {
				obj, err := rc.Get(ctx, listNS, ref.name)
				if err != nil {
					fmt.Fprintln(s.deps.Stderr, formatError(err))
					failed = true
					continue
				}
				objs = append(objs, obj)
			}
		} else {
			var err error
			objs, listRV, err = rc.ListAll(ctx, client.ListOptions{Namespace: listNS, LabelSelector: o.labels, FieldSelector: o.fields})
			if err != nil {
				return err
			}
		}
		switch o.output {
		case "yaml", "json":
			all = append(all, objs...)
			continue
		case "name":
			for _, obj := range objs {
				fmt.Fprintf(s.deps.Stdout, "%s/%s\n", qualifiedKind(k), obj.GetMetadata().GetName())
			}
			continue
		}
		if len(objs) == 0 && (multi || len(names) > 0) {
			continue
		}
		if len(objs) == 0 && !o.watch {
			continue
		}
		if printedAt > 0 {
			fmt.Fprintln(s.deps.Stdout)
		}
		printedAt++
		p := newTablePrinter(s.deps.Stdout, k, tableOptions{
			wide: o.output == "wide", withNamespace: o.allNamespaces && k.Namespaced, withKind: multi,
		}, s.now)
		p.header()
		for _, obj := range objs {
			p.row(obj)
		}
		if err := p.flush(); err != nil {
			return err
		}
		if o.watch {
			return s.watch(ctx, rc, listNS, listRV, o, p)
		}
	}
	switch o.output {
	case "yaml", "json":
		if len(all) == 0 && o.output == "yaml" && len(ra.refs) == 0 && !o.watch {
			s.noResources(ns, o, ra.kinds)
		} else if err := s.printObjects(all, o.output); err != nil {
			return err
		}
		if o.watch {
			return s.watch(ctx, client.ForKind(conn, ra.kinds[0]), nsFor(ra.kinds[0], ns, o), listRV, o, nil)
		}
	case "name":
	default:
		if printedAt == 0 && len(ra.refs) == 0 {
			s.noResources(ns, o, ra.kinds)
		}
	}
	if failed {
		return errReported
	}
	return nil
}

func nsFor(k *api.Kind, ns string, o getOptions) string {
	if o.allNamespaces || !k.Namespaced {
		return ""
	}
	return ns
}

// printObjects writes objects as manifests that apply back unchanged: YAML
// documents separated by "---", or JSON (one object bare, any other number
// as a List).
func (s *session) printObjects(objs []api.Object, format string) error {
	marshal := manifest.MarshalYAML
	if format == "json" {
		marshal = manifest.MarshalJSON
	}
	out, err := marshal(objs...)
	if err != nil {
		return err
	}
	_, err = s.deps.Stdout.Write(out)
	return err
}

func (s *session) noResources(ns string, o getOptions, kinds []*api.Kind) {
	if o.allNamespaces || !kinds[0].Namespaced {
		fmt.Fprintln(s.deps.Stderr, "No resources found")
		return
	}
	fmt.Fprintf(s.deps.Stderr, "No resources found in %s namespace.\n", ns)
}

// watch prints one row (or YAML/JSON document) per change after rv, until
// the server ends the stream or ctx ends.
func (s *session) watch(ctx context.Context, rc *client.Resource[api.Object], ns, rv string, o getOptions, p *tablePrinter) error {
	w, err := rc.Watch(ctx, client.WatchOptions{Namespace: ns, LabelSelector: o.labels, FieldSelector: o.fields, ResourceVersion: rv})
	if err != nil {
		return err
	}
	defer w.Stop()
	for {
		ev, err := w.Next()
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Type == client.Bookmark || ev.Object == nil {
			continue
		}
		switch o.output {
		case "yaml":
			out, err := manifest.MarshalYAML(ev.Object)
			if err != nil {
				return err
			}
			fmt.Fprint(s.deps.Stdout, "---\n", string(out))
		case "json":
			out, err := manifest.MarshalJSON(ev.Object)
			if err != nil {
				return err
			}
			s.deps.Stdout.Write(out)
		case "name":
			fmt.Fprintf(s.deps.Stdout, "%s/%s\n", qualifiedKind(rc.Kind()), ev.Object.GetMetadata().GetName())
		default:
			p.row(ev.Object)
			if err := p.flush(); err != nil {
				return err
			}
		}
	}
}

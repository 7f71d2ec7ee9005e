package cli

import (
	"fmt"
	"strings"

	"bosun.dev/pkg/api"
)

// allKinds are what "get all" lists, as in kubectl.
var allKinds = []string{"pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "jobs"}

// resolveKinds turns a command-line type — a name, short name or plural
// ("po", "deploy", "deployments.apps"), a comma-separated list of them, or
// "all" — into kinds.
func resolveKinds(arg string) ([]*api.Kind, error) {
	var out []*api.Kind
	seen := map[*api.Kind]bool{}
	for _, name := range strings.Split(arg, ",") {
		names := []string{name}
		if strings.EqualFold(name, "all") {
			names = allKinds
		}
		for _, n := range names {
			k, err := api.Lookup(strings.TrimSpace(n))
			if err != nil {
				return nil, err
			}
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no resource type given")
	}
	return out, nil
}

// resourceArgs are the objects a command names: either "TYPE NAME..." or
// "TYPE/NAME...".
type resourceArgs struct {
	kinds []*api.Kind
	// names are the names given, by kind; empty for "all of this kind".
	refs []objectRef
}

type objectRef struct {
	kind *api.Kind
	name string
}

func parseResourceArgs(args []string) (*resourceArgs, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource, e.g. %q", "bosun get pods")
	}
	if strings.Contains(args[0], "/") {
		ra := &resourceArgs{}
		seen := map[*api.Kind]bool{}
		for _, a := range args {
			kindName, name, ok := strings.Cut(a, "/")
			if !ok || name == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got %q)", a)
			}
			k, err := api.Lookup(kindName)
			if err != nil {
				return nil, err
			}
			if !seen[k] {
				seen[k] = true
				ra.kinds = append(ra.kinds, k)
			}
			ra.refs = append(ra.refs, objectRef{k, name})
		}
		return ra, nil
	}
	kinds, err := resolveKinds(args[0])
	if err != nil {
		return nil, err
	}
	ra := &resourceArgs{kinds: kinds}
	if len(args) > 1 {
		if len(kinds) != 1 {
			return nil, fmt.Errorf("names can only be given with a single resource type")
		}
		for _, name := range args[1:] {
			ra.refs = append(ra.refs, objectRef{kinds[0], name})
		}
	}
	return ra, nil
}

// qualifiedKind is how kubectl names a kind in messages: "pod",
// "deployment.apps", "lease.coordination.k8s.io".
func qualifiedKind(k *api.Kind) string {
	if k.Group == "" {
		return k.Singular
	}
	return k.Singular + "." + k.Group
}

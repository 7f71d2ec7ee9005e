package cli

import (
	"fmt"
	"strings"

	"bosun.dev/pkg/api"
)

// workloadTarget reads "KIND/NAME" or "KIND NAME" and checks that the kind
// is one of allowed.
func workloadTarget(args []string, allowed ...string) (*api.Kind, string, error) {
	var kindName, name string
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		kindName, name, _ = strings.Cut(args[0], "/")
	case len(args) == 2:
		kindName, name = args[0], args[1]
	default:
		return nil, "", fmt.Errorf("want TYPE/NAME or TYPE NAME, e.g. deployment/web")
	}
	k, err := api.Lookup(kindName)
	if err != nil {
		return nil, "", err
	}
	ok := false
	for _, a := range allowed {
		ok = ok || k.Kind == a
	}
	if !ok {
		return nil, "", fmt.Errorf("%s is not supported here (supported: %s)", k.Resource, strings.Join(allowed, ", "))
	}
	if name == "" {
		return nil, "", fmt.Errorf("a name is required: %s/NAME", k.Resource)
	}
	return k, name, nil
}

// qualified is "deployment.apps/web", as kubectl prints objects.
func qualified(k *api.Kind, name string) string {
	if k.Group == "" {
		return k.Singular + "/" + name
	}
	return k.Singular + "." + k.Group + "/" + name
}

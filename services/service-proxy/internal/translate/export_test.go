package translate

import (
	"cmp"
	"slices"

	"bosun.dev/pkg/api"
)

// TranslateInTurn translates the Services one after the other, oldest
// first, each against what the older ones hold: the result Translate,
// which translates them in parallel, must give.
func TranslateInTurn(in Input, opts Options) *Result {
	t, services, eps := prepare(in, opts)
	res := &Result{Shared: sharedGroup(t.opts, t.seed)}
	t.claim(claimSet{names: groupNames(res.Shared)}, "(shared)")
	for _, svc := range services {
		key := api.KeyOf(svc)
		e := t.service(svc, eps[key], t.held)
		t.claim(e.claims, key)
		res.Problems = append(res.Problems, e.problems...)
		if e.group != nil {
			res.Groups = append(res.Groups, e.group)
		}
	}
	slices.SortFunc(res.Groups, func(a, b *Group) int { return cmp.Compare(a.Key, b.Key) })
	return res
}

package translate_test

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

// bytesource hands out fuzz input a byte at a time, zero when it runs out.
type bytesource struct{ b []byte }

func (s *bytesource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *bytesource) pick(options ...string) string { return options[int(s.next())%len(options)] }

// oddInput builds Services, Endpoints and Nodes from fuzz input, from a
// vocabulary rich in what the apiserver would refuse or what clashes.
func oddInput(data []byte) translate.Input {
	s := &bytesource{b: data}
	var in translate.Input
	names := []string{"web", "api", "a.b", "a", "", "x-y"}
	namespaces := []string{"default", "b", "c", "b.c", ""}
	for n := int(s.next() % 6); n > 0; n-- {
		svc := &corev1.Service{
			Metadata: &metav1.ObjectMeta{Name: s.pick(names...), Namespace: s.pick(namespaces...), Annotations: map[string]string{}},
			Spec: &corev1.ServiceSpec{
				Type:                  s.pick("ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "", "Bogus"),
				ClusterIp:             s.pick("10.96.0.1", "10.96.0.2", "None", "", "fd00::1", "bad-ip"),
				SessionAffinity:       s.pick("None", "ClientIP", "", "Cookie"),
				InternalTrafficPolicy: s.pick("Cluster", "Local", ""),
				ExternalTrafficPolicy: s.pick("", "Cluster", "Local"),
			},
		}
		if s.next()%2 == 0 {
			svc.Metadata.Annotations[translate.AnnotationLBPolicy] = s.pick("round-robin", "least-request", "ring-hash", "random", "maglev", "")
		}
		if s.next()%3 == 0 {
			svc.Metadata.Annotations[translate.AnnotationRetries] = s.pick("1", "3", "0", "-1", "11", "x")
			svc.Metadata.Annotations[translate.AnnotationRetryOn] = s.pick("", "5xx", "unavailable,bogus", ",,,")
		}
		if s.next()%3 == 0 {
			svc.Metadata.Annotations[translate.AnnotationOutlierConsecutiveErrors] = s.pick("5", "0", "1001", "z")
			svc.Metadata.Annotations[translate.AnnotationPreferLocal] = s.pick("true", "false", "yes")
		}
		for p := int(s.next() % 5); p > 0; p-- {
			if s.next()%9 == 0 {
				svc.Spec.Ports = append(svc.Spec.Ports, nil)
				continue
			}
			ap := s.pick("", "grpc", "http", "tcp", "weird/proto")
			port := &corev1.ServicePort{
				Name:     s.pick("grpc", "http", "tcp", "", "grpc-web", "http2-x"),
				Protocol: s.pick("TCP", "", "UDP", "SCTP"),
				Port:     int32(s.next()%4) * int32(s.next()) * 300,
				NodePort: int32(s.next()%3) * 30000,
			}
			if ap != "" {
				port.AppProtocol = &ap
			}
			svc.Spec.Ports = append(svc.Spec.Ports, port)
		}
		in.Services = append(in.Services, svc)
		ep := &corev1.Endpoints{Metadata: &metav1.ObjectMeta{Name: svc.Metadata.Name, Namespace: svc.Metadata.Namespace}}
		for ss := int(s.next() % 3); ss > 0; ss-- {
			subset := &corev1.EndpointSubset{}
			for a := int(s.next() % 4); a > 0; a-- {
				addr := &corev1.EndpointAddress{Ip: s.pick("10.0.0.1", "10.0.0.2", "fd00::5", "", "nope", "10.0.0.1")}
				if nn := s.pick("n1", "n2", "", "ghost"); nn != "" {
					addr.NodeName = &nn
				}
				if s.next()%2 == 0 {
					subset.Addresses = append(subset.Addresses, addr)
				} else {
					subset.NotReadyAddresses = append(subset.NotReadyAddresses, addr)
				}
			}
			for p := int(s.next() % 3); p > 0; p-- {
				subset.Ports = append(subset.Ports, &corev1.EndpointPort{Name: s.pick("grpc", "http", "", "tcp"), Port: int32(s.next()) * int32(s.next()%4) * 100, Protocol: s.pick("TCP", "UDP", "")})
			}
			ep.Subsets = append(ep.Subsets, subset)
		}
		in.Endpoints = append(in.Endpoints, ep)
	}
	in.Nodes = []*corev1.Node{node("n1", "eu", "eu-a"), node("n2", "eu", s.pick("eu-a", "eu-b", ""))}
	return in
}

// sameResources fails t unless a and b hold the same resources, equal in
// content.
func sameResources(t *testing.T, what string, a, b *snapshot.Set) {
	t.Helper()
	for _, typ := range snapshot.Types {
		if an, bn := a.Names(typ), b.Names(typ); !slices.Equal(an, bn) {
			t.Fatalf("%s: %s names %v and %v", what, typ, an, bn)
		}
		for _, name := range a.Names(typ) {
			ra, _ := a.Get(typ, name)
			rb, _ := b.Get(typ, name)
			if !proto.Equal(ra, rb) {
				t.Fatalf("%s: %s %q differs:\n%v\n%v", what, typ, name, ra, rb)
			}
		}
	}
}

// sameHashSameContent fails t if a resource of a and one of b with the
// same name and hash differ in content: a proxy would never be sent the
// change.
func sameHashSameContent(t *testing.T, a, b *snapshot.Set) {
	t.Helper()
	for _, typ := range snapshot.Types {
		for _, name := range a.Names(typ) {
			ra, _ := a.Get(typ, name)
			rb, ok := b.Get(typ, name)
			if ok && a.Hash(typ, name) == b.Hash(typ, name) && !proto.Equal(ra, rb) {
				t.Fatalf("%s %q has hash %s for two contents:\n%v\n%v", typ, name, a.Hash(typ, name), ra, rb)
			}
		}
	}
}

// Whatever the Services and Endpoints, the translation neither panics nor
// yields a configuration that fails its validators or the consistency
// check, for any proxy node; translating in parallel gives what
// translating the Services in turn gives; and two resources of one name
// and hash have one content.
func FuzzTranslate(f *testing.F) {
	for i := 0; i < 64; i++ {
		seed := make([]byte, 96)
		for j := range seed {
			seed[j] = byte((i*131 + j*37 + i*j) % 256)
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A Cache that saw the first half's state first must give what a
		// fresh translation of the second half's gives.
		var cache translate.Cache
		first, second := oddInput(data[:len(data)/2]), oddInput(data[len(data)/2:])
		cache.Translate(first, translate.Options{})
		// Keep some objects the same, as informers do for unchanged ones.
		for i := range min(len(first.Services), len(second.Services)) {
			if i%2 == 0 {
				second.Services[i], second.Endpoints[i] = first.Services[i], first.Endpoints[i]
			}
		}
		cached := cache.Translate(second, translate.Options{})
		res := translate.Translate(second, translate.Options{})
		want, errWant := snapshot.FromResult(res, "n1", nil)
		got, errGot := snapshot.FromResult(cached, "n1", nil)
		if (errWant == nil) != (errGot == nil) || (errWant == nil && !want.Equal(got)) || fmt.Sprint(res.Problems) != fmt.Sprint(cached.Problems) {
			t.Fatalf("cached translation differs from a fresh one:\nfresh problems %v\ncached problems %v", res.Problems, cached.Problems)
		}
		inTurn := translate.TranslateInTurn(second, translate.Options{})
		if fmt.Sprint(res.Problems) != fmt.Sprint(inTurn.Problems) {
			t.Fatalf("parallel translation's problems differ from translating in turn:\nparallel %v\nin turn  %v", res.Problems, inTurn.Problems)
		}
		fromFirst := translate.Translate(first, translate.Options{})
		for _, nodeName := range []string{"", "n1"} {
			a, errA := snapshot.FromResult(res, nodeName, nil)
			b, errB := snapshot.FromResult(inTurn, nodeName, nil)
			c, errC := snapshot.FromResult(fromFirst, nodeName, nil)
			if errA != nil || errB != nil || errC != nil {
				t.Fatalf("node %q: %v; %v; %v", nodeName, errA, errB, errC)
			}
			sameResources(t, "parallel and in turn", a, b)
			if !a.Equal(b) {
				t.Fatal("parallel and in-turn translations have different versions")
			}
			sameHashSameContent(t, a, c)
		}
		for _, nodeName := range []string{"", "n1", "n2", "ghost"} {
			b := snapshot.NewBuilder(nil)
			b.AddGroup(res.Shared, nodeName)
			for _, g := range res.Groups {
				if err := translate.ValidateGroup(g); err != nil {
					t.Fatal(err)
				}
				for _, a := range g.AssignmentsFor(nodeName) {
					if err := a.ValidateAll(); err != nil {
						t.Fatalf("assignment for node %q: %v", nodeName, err)
					}
				}
				b.AddGroup(g, nodeName)
			}
			if _, err := b.Build(); err != nil {
				t.Fatalf("node %q: %v\nproblems: %v", nodeName, err, fmt.Sprint(res.Problems))
			}
		}
	})
}

package translate_test

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/services/service-proxy/internal/snapshot"
	"bosun.dev/services/service-proxy/internal/translate"
)

// hashInput is a Service using most of what translation reads, with its
// Endpoints and Nodes.
func hashInput() translate.Input {
	web := svc("web", annotate(translate.AnnotationRetries, "2"), annotate(translate.AnnotationOutlierConsecutiveErrors, "5"), func(s *corev1.Service) {
		s.Spec.Type = "NodePort"
		s.Spec.Ports = append(s.Spec.Ports,
			&corev1.ServicePort{Name: "http", Port: 81, NodePort: 30081},
			&corev1.ServicePort{Name: "db", Port: 5432, NodePort: 30432})
		s.Spec.Ports[0].NodePort = 30080
	})
	ep := eps("web", 8080, []addr{{"10.0.1.1", "n1"}, {"10.0.3.1", "n3"}}, []addr{{"10.0.2.1", "n2"}})
	return translate.Input{Services: []*corev1.Service{web}, Endpoints: []*corev1.Endpoints{ep}, Nodes: threeNodes}
}

// Resources are versioned by hashes of what they are made from, not of
// their encoding. Whatever changes, two resources of one name and hash
// have the same content, so that no change goes unsent; and a change of
// endpoints, Nodes or labels changes the hashes of nothing but the
// assignments it changes.
func TestHashFollowsContent(t *testing.T) {
	cases := []struct {
		name   string
		change func(in *translate.Input, opts *translate.Options)
		// only lists the types whose hashes may change; nil: any.
		only []string
	}{
		{"nothing", func(*translate.Input, *translate.Options) {}, []string{}},
		{"label", func(in *translate.Input, _ *translate.Options) {
			in.Services[0].Metadata.Labels = map[string]string{"app": "web"}
			in.Services[0].Metadata.ResourceVersion = "42"
		}, []string{}},
		{"endpoint", func(in *translate.Input, _ *translate.Options) {
			in.Endpoints[0].Subsets[0].Addresses[0].Ip = "10.0.1.2"
		}, []string{resource.EndpointType}},
		{"not-ready endpoint", func(in *translate.Input, _ *translate.Options) {
			in.Endpoints[0].Subsets[0].NotReadyAddresses = nil
		}, []string{}},
		{"zone", func(in *translate.Input, _ *translate.Options) {
			in.Nodes = []*corev1.Node{node("n1", "eu", "eu-a"), node("n2", "eu", "eu-a"), node("n3", "eu", "eu-c")}
		}, []string{resource.EndpointType}},
		{"lb policy annotation", func(in *translate.Input, _ *translate.Options) {
			annotate(translate.AnnotationLBPolicy, "least-request")(in.Services[0])
		}, nil},
		{"retries annotation", func(in *translate.Input, _ *translate.Options) {
			annotate(translate.AnnotationRetries, "3")(in.Services[0])
		}, nil},
		{"outlier annotation", func(in *translate.Input, _ *translate.Options) {
			delete(in.Services[0].Metadata.Annotations, translate.AnnotationOutlierConsecutiveErrors)
		}, nil},
		{"prefer local", func(in *translate.Input, _ *translate.Options) {
			annotate(translate.AnnotationPreferLocal, "true")(in.Services[0])
		}, nil},
		{"session affinity", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.SessionAffinity = "ClientIP" }, nil},
		{"publish not ready", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.PublishNotReadyAddresses = true }, nil},
		{"cluster IP", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.ClusterIp = "10.96.0.99" }, nil},
		{"port name", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.Ports[1].Name = "tcp" }, nil},
		{"app protocol", func(in *translate.Input, _ *translate.Options) {
			in.Services[0].Spec.Ports[2].AppProtocol = ptr("http")
		}, nil},
		{"node port", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.Ports[0].NodePort = 30090 }, nil},
		{"external traffic policy", func(in *translate.Input, _ *translate.Options) { in.Services[0].Spec.ExternalTrafficPolicy = "Local" }, nil},
		{"cluster domain", func(_ *translate.Input, o *translate.Options) { o.ClusterDomain = "example.org" }, nil},
		{"ingress address", func(_ *translate.Input, o *translate.Options) { o.IngressAddress = "127.0.0.1" }, nil},
		{"outbound port", func(_ *translate.Input, o *translate.Options) { o.OutboundPort = 15006 }, nil},
	}
	build := func(in translate.Input, opts translate.Options, node string) *snapshot.Set {
		t.Helper()
		set, err := snapshot.FromResult(translate.Translate(in, opts), node, nil)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, node := range []string{"", "n1"} {
				before := build(hashInput(), translate.Options{}, node)
				in, opts := hashInput(), translate.Options{}
				tc.change(&in, &opts)
				after := build(in, opts, node)
				changed := 0
				for _, typ := range snapshot.Types {
					for _, name := range before.Names(typ) {
						a, _ := before.Get(typ, name)
						b, ok := after.Get(typ, name)
						if !ok {
							continue
						}
						sameHash, sameContent := before.Hash(typ, name) == after.Hash(typ, name), proto.Equal(a, b)
						if sameHash && !sameContent {
							t.Errorf("node %q: %s %q changed but kept its hash", node, typ, name)
						}
						if !sameContent {
							changed++
						}
						if !sameHash && tc.only != nil && !slices.Contains(tc.only, typ) {
							t.Errorf("node %q: %s %q got a new hash though %s changes none", node, typ, name, tc.name)
						}
					}
				}
				if tc.only == nil && changed == 0 && len(after.Names(resource.ClusterType)) == len(before.Names(resource.ClusterType)) && before.Equal(after) {
					t.Errorf("node %q: the change left the configuration as it was; the case tests nothing", node)
				}
			}
		})
	}
}

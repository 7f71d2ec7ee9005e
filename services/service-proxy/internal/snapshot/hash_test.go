package snapshot

import (
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/services/service-proxy/internal/translate"
)

// translatedAssignments are the assignments of a prefer-local Service
// with endpoints in several localities, as a proxy on n1 sees them: every
// field translation sets is set in them.
func translatedAssignments(t *testing.T) []*endpointv3.ClusterLoadAssignment {
	t.Helper()
	n := func(name, zone string) *corev1.Node {
		return &corev1.Node{Metadata: &metav1.ObjectMeta{Name: name, Labels: map[string]string{translate.LabelRegion: "eu", translate.LabelZone: zone}}}
	}
	n1, n2 := "n1", "n2"
	res := translate.Translate(translate.Input{
		Services: []*corev1.Service{{
			Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{translate.AnnotationPreferLocal: "true"}},
			Spec:     &corev1.ServiceSpec{ClusterIp: "10.96.0.1", Ports: []*corev1.ServicePort{{Name: "grpc", Port: 80}}},
		}},
		Endpoints: []*corev1.Endpoints{{
			Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Subsets: []*corev1.EndpointSubset{{
				Addresses: []*corev1.EndpointAddress{{Ip: "10.0.0.1", NodeName: &n1}, {Ip: "10.0.0.2", NodeName: &n2}, {Ip: "10.0.0.3"}},
				Ports:     []*corev1.EndpointPort{{Name: "grpc", Port: 8080}},
			}},
		}},
		Nodes: []*corev1.Node{n("n1", "eu-a"), n("n2", "eu-b")},
	}, translate.Options{})
	if len(res.Groups) != 1 {
		t.Fatalf("problems: %v", res.Problems)
	}
	out := res.Groups[0].AssignmentsFor("n1")
	if len(out) == 0 || len(out[0].GetEndpoints()) < 3 {
		t.Fatalf("assignments %v: want three localities", out)
	}
	return out
}

// The assignment hash reads every field translation sets: changing,
// clearing or dropping any of them changes the hash, or makes the
// assignment one to be hashed from its encoding.
func TestAssignmentHashCoversTranslatedFields(t *testing.T) {
	for _, cla := range translatedAssignments(t) {
		base, ok := assignmentHash(cla)
		if !ok {
			t.Fatalf("a translated assignment is not hashed from its fields: %v", cla)
		}
		root := proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
		tried := 0
		check := func(what string) {
			tried++
			if h, ok := assignmentHash(root); ok && h == base {
				t.Errorf("assignment %q: %s left the hash as it was", cla.GetClusterName(), what)
			}
		}
		mutateEach(t, root.ProtoReflect(), check)
		if h, _ := assignmentHash(root); h != base {
			t.Fatal("mutations were not undone")
		}
		if tried < 20 {
			t.Fatalf("only %d mutations tried", tried)
		}
	}
}

// mutateEach changes each populated field of m in turn, calls check, and
// puts it back: scalars get another value, messages are cleared, lists
// lose their last element.
func mutateEach(t *testing.T, m protoreflect.Message, check func(what string)) {
	t.Helper()
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	for _, fd := range fields {
		v := m.Get(fd)
		name := string(fd.FullName())
		switch {
		case fd.IsMap():
			t.Errorf("%s: maps are not expected in a translated assignment", name)
		case fd.IsList():
			l := v.List()
			if fd.Message() != nil {
				for i := 0; i < l.Len(); i++ {
					mutateEach(t, l.Get(i).Message(), check)
				}
			}
			last := l.Get(l.Len() - 1)
			l.Truncate(l.Len() - 1)
			check(name + " without its last element")
			l.Append(last)
		case fd.Message() != nil:
			mutateEach(t, v.Message(), check)
			m.Clear(fd)
			check(name + " cleared")
			m.Set(fd, v)
		default:
			var nv protoreflect.Value
			switch fd.Kind() {
			case protoreflect.StringKind:
				nv = protoreflect.ValueOfString(v.String() + "x")
			case protoreflect.BoolKind:
				nv = protoreflect.ValueOfBool(!v.Bool())
			case protoreflect.EnumKind:
				nv = protoreflect.ValueOfEnum(v.Enum() + 1)
			case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
				nv = protoreflect.ValueOfUint32(uint32(v.Uint()) + 1)
			case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
				nv = protoreflect.ValueOfUint64(v.Uint() + 1)
			case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
				nv = protoreflect.ValueOfInt32(int32(v.Int()) + 1)
			case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
				nv = protoreflect.ValueOfInt64(v.Int() + 1)
			default:
				t.Errorf("%s: kind %v not expected in a translated assignment", name, fd.Kind())
				continue
			}
			m.Set(fd, nv)
			check(name + " changed")
			m.Set(fd, v)
		}
	}
}

// An assignment with a field the hash does not read is hashed from its
// encoding, and still apart from one without it.
func TestAssignmentHashFallsBack(t *testing.T) {
	cla := translatedAssignments(t)[0]
	base, err := contentEntry("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", cla)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*endpointv3.ClusterLoadAssignment){
		"policy":            func(c *endpointv3.ClusterLoadAssignment) { c.Policy = &endpointv3.ClusterLoadAssignment_Policy{} },
		"locality metadata": func(c *endpointv3.ClusterLoadAssignment) { c.Endpoints[0].Metadata = &corev3.Metadata{} },
		"endpoint metadata": func(c *endpointv3.ClusterLoadAssignment) {
			s, _ := structpb.NewStruct(map[string]any{"a": "b"})
			c.Endpoints[0].LbEndpoints[0].Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"x": s}}
		},
		"hostname": func(c *endpointv3.ClusterLoadAssignment) { c.Endpoints[0].LbEndpoints[0].GetEndpoint().Hostname = "h" },
		"named port": func(c *endpointv3.ClusterLoadAssignment) {
			c.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().PortSpecifier = &corev3.SocketAddress_NamedPort{NamedPort: "p"}
		},
	} {
		c := proto.Clone(cla).(*endpointv3.ClusterLoadAssignment)
		change(c)
		if _, ok := assignmentHash(c); ok {
			t.Errorf("%s: hashed from the fields it does not read", name)
		}
		e, err := contentEntry("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", c)
		if err != nil {
			t.Fatal(err)
		}
		if e.hash == base.hash {
			t.Errorf("%s: same hash as without", name)
		}
	}
}

// The references read from an encoded HTTP connection manager are those
// read from the decoded one.
func TestEncodedHCMReferences(t *testing.T) {
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		t.Fatal(err)
	}
	rds := func(name string) *hcmv3.HttpConnectionManager_Rds {
		return &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: name, ConfigSource: &corev3.ConfigSource{}}}
	}
	typed := &hcmv3.HttpFilter{Name: "router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}
	discovered := &hcmv3.HttpFilter{Name: "d", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{}}}
	bare := &hcmv3.HttpFilter{Name: "bare"}
	cases := []struct {
		name     string
		hcm      *hcmv3.HttpConnectionManager
		readable bool
	}{
		{"rds and router", &hcmv3.HttpConnectionManager{StatPrefix: "s", RouteSpecifier: rds("r"), HttpFilters: []*hcmv3.HttpFilter{typed}}, true},
		{"rds without a name", &hcmv3.HttpConnectionManager{RouteSpecifier: rds(""), HttpFilters: []*hcmv3.HttpFilter{typed}}, true},
		{"no filters", &hcmv3.HttpConnectionManager{RouteSpecifier: rds("r")}, true},
		{"router not last", &hcmv3.HttpConnectionManager{RouteSpecifier: rds("r"), HttpFilters: []*hcmv3.HttpFilter{typed, bare}}, true},
		{"discovered last", &hcmv3.HttpConnectionManager{RouteSpecifier: rds("r"), HttpFilters: []*hcmv3.HttpFilter{typed, discovered}}, true},
		{"two filters", &hcmv3.HttpConnectionManager{RouteSpecifier: rds("r"), HttpFilters: []*hcmv3.HttpFilter{bare, typed}}, true},
		{"no routes", &hcmv3.HttpConnectionManager{HttpFilters: []*hcmv3.HttpFilter{typed}}, false},
		{"inline routes", &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			VirtualHosts: []*routev3.VirtualHost{{Routes: []*routev3.Route{{Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}}}}},
		}}, HttpFilters: []*hcmv3.HttpFilter{typed}}, false},
		{"scoped routes", &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{Name: "s"}}, HttpFilters: []*hcmv3.HttpFilter{typed}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := anypb.New(tc.hcm)
			if err != nil {
				t.Fatal(err)
			}
			fast := &refs{}
			if got := fast.addEncodedHCM(a); got != tc.readable {
				t.Fatalf("read from the encoding: %v, want %v", got, tc.readable)
			}
			decoded := &refs{}
			decoded.addHCM(tc.hcm)
			if !tc.readable {
				return
			}
			if !slices.Equal(fast.routes, decoded.routes) || !slices.Equal(fast.clusters, decoded.clusters) || !slices.Equal(fast.faults, decoded.faults) {
				t.Errorf("from the encoding %+v, decoded %+v", *fast, *decoded)
			}
		})
	}
	// Garbage is left to the decoder, which reports it.
	if (&refs{}).addEncodedHCM(&anypb.Any{TypeUrl: "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName()), Value: []byte{0x1a, 0x05, 0x01}}) {
		t.Error("a truncated encoding was read")
	}
}

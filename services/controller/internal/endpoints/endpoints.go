// Package endpoints runs the Endpoints controller: for every Service with a
// selector it keeps an Endpoints object of the same name listing the pods
// the selector matches, ready ones under addresses and the others under
// notReadyAddresses, with each pod's IP, node and the ports the Service's
// target ports resolve to in that pod. Services without a selector keep
// Endpoints their owner writes; an Endpoints whose Service is gone is
// deleted.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// Name is the controller's name in flags, logs and metrics.
const Name = "endpoints"

// ManagedByLabel marks the Endpoints this controller writes; only those are
// deleted when their Service goes.
const ManagedByLabel = "endpoints.bosun.dev/managed-by"

// ManagedBy is ManagedByLabel's value.
const ManagedBy = "endpoints-controller"

// Controller is the Endpoints controller.
type Controller struct {
	services  *informer.Informer[*corev1.Service]
	pods      *informer.Informer[*corev1.Pod]
	endpoints *informer.Informer[*corev1.Endpoints]
	epAPI     *client.Resource[*corev1.Endpoints]
	queue     controller.Queue
	log       *slog.Logger
}

// New builds the controller and registers its informer handlers.
func New(c *controller.Context) *Controller {
	e := &Controller{
		services:  c.Informers.Services,
		pods:      c.Informers.Pods,
		endpoints: c.Informers.Endpoints,
		epAPI:     client.For[*corev1.Endpoints](c.Conn),
		queue:     controller.NewQueue(Name, c.Metrics),
		log:       c.Logger(),
	}
	enqueueSvc := func(s *corev1.Service) { e.queue.Add(api.KeyOf(s)) }
	e.services.AddEventHandler(informer.HandlerFuncs[*corev1.Service]{
		AddFunc: enqueueSvc, UpdateFunc: func(_, s *corev1.Service) { enqueueSvc(s) }, DeleteFunc: enqueueSvc,
	})
	e.pods.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc: e.podChanged,
		UpdateFunc: func(old, p *corev1.Pod) {
			e.podChanged(p)
			if !sameLabels(old.GetMetadata().GetLabels(), p.GetMetadata().GetLabels()) {
				e.podChanged(old)
			}
		},
		DeleteFunc: e.podChanged,
	})
	e.endpoints.AddEventHandler(informer.HandlerFuncs[*corev1.Endpoints]{
		DeleteFunc: func(ep *corev1.Endpoints) { e.queue.Add(api.KeyOf(ep)) },
		AddFunc: func(ep *corev1.Endpoints) {
			if _, ok := e.services.Get(ep.GetMetadata().GetNamespace(), ep.GetMetadata().GetName()); !ok {
				e.queue.Add(api.KeyOf(ep))
			}
		},
	})
	return e
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// podChanged enqueues every Service in the pod's namespace that selects it.
func (e *Controller) podChanged(p *corev1.Pod) {
	svcs, _ := e.services.ByIndex(informer.NamespaceIndex, p.GetMetadata().GetNamespace())
	for _, s := range svcs {
		if sel := s.GetSpec().GetSelector(); len(sel) > 0 && selects(sel, p.GetMetadata().GetLabels()) {
			e.queue.Add(api.KeyOf(s))
		}
	}
}

func selects(sel, lbls map[string]string) bool {
	for k, v := range sel {
		if w, ok := lbls[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Run waits for the caches and runs workers until ctx ends.
func (e *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, e.services, e.pods, e.endpoints) {
		return
	}
	controller.RunWorkers(ctx, e.queue, workers, e.sync, e.log)
}

func (e *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, ok := e.services.Get(ns, name)
	if !ok {
		if ep, exists := e.endpoints.Get(ns, name); !exists || ep.GetMetadata().GetLabels()[ManagedByLabel] != ManagedBy {
			return nil
		}
		_, err := e.epAPI.Delete(ctx, ns, name, client.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if len(svc.GetSpec().GetSelector()) == 0 || svc.GetMetadata().GetDeletionTimestamp() != nil {
		return nil
	}
	pods, _ := e.pods.ByIndex(informer.NamespaceIndex, ns)
	subsets := Subsets(svc, pods)
	cur, exists := e.endpoints.Get(ns, name)
	lbls := controller.CopyMap(svc.GetMetadata().GetLabels())
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[ManagedByLabel] = ManagedBy
	want := &corev1.Endpoints{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls},
		Subsets:  subsets,
	}
	if !exists {
		_, err := e.epAPI.Create(ctx, want)
		if apierrors.IsAlreadyExists(err) {
			return err // the cache is behind; retry once it shows the object
		}
		return err
	}
	if subsetsEqual(cur.GetSubsets(), subsets) && sameLabels(cur.GetMetadata().GetLabels(), want.Metadata.Labels) {
		return nil
	}
	next := proto.Clone(cur).(*corev1.Endpoints)
	next.Subsets = subsets
	next.Metadata.Labels = want.Metadata.Labels
	_, err := e.epAPI.Update(ctx, next)
	return err
}

func subsetsEqual(a, b []*corev1.EndpointSubset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Subsets computes the Endpoints subsets of svc from pods (any pods of its
// namespace; those it does not select are skipped): pods grouped by the
// ports their target ports resolve to, addresses sorted by IP.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []*corev1.EndpointSubset {
	sel := svc.GetSpec().GetSelector()
	type group struct {
		ports           []*corev1.EndpointPort
		ready, notReady []*corev1.EndpointAddress
	}
	groups := map[string]*group{}
	for _, p := range pods {
		if !selects(sel, p.GetMetadata().GetLabels()) || p.GetStatus().GetPodIp() == "" || !controller.IsPodActive(p) {
			continue
		}
		ports := resolvePorts(svc, p)
		if len(svc.GetSpec().GetPorts()) > 0 && len(ports) == 0 {
			continue
		}
		gk := portsKey(ports)
		g := groups[gk]
		if g == nil {
			g = &group{ports: ports}
			groups[gk] = g
		}
		addr := &corev1.EndpointAddress{
			Ip: p.GetStatus().GetPodIp(),
			TargetRef: &metav1.ObjectReference{Kind: "Pod", Namespace: p.GetMetadata().GetNamespace(),
				Name: p.GetMetadata().GetName(), Uid: p.GetMetadata().GetUid()},
		}
		if n := p.GetSpec().GetNodeName(); n != "" {
			addr.NodeName = proto.String(n)
		}
		if p.GetSpec().GetHostname() != "" && p.GetSpec().GetSubdomain() == svc.GetMetadata().GetName() {
			addr.Hostname = p.GetSpec().GetHostname()
		}
		if controller.IsPodReady(p) || svc.GetSpec().GetPublishNotReadyAddresses() {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*corev1.EndpointSubset
	for _, k := range keys {
		g := groups[k]
		byIP := func(a []*corev1.EndpointAddress) {
			sort.Slice(a, func(i, j int) bool {
				if a[i].Ip != a[j].Ip {
					return a[i].Ip < a[j].Ip
				}
				return a[i].TargetRef.Name < a[j].TargetRef.Name
			})
		}
		byIP(g.ready)
		byIP(g.notReady)
		out = append(out, &corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return out
}

// resolvePorts maps each Service port to the pod's port: a number as is, a
// name through the pod's container ports (skipped when the pod has none of
// that name).
func resolvePorts(svc *corev1.Service, p *corev1.Pod) []*corev1.EndpointPort {
	var out []*corev1.EndpointPort
	for _, sp := range svc.GetSpec().GetPorts() {
		protocol := sp.GetProtocol()
		if protocol == "" {
			protocol = "TCP"
		}
		port := int32(0)
		tp := sp.GetTargetPort()
		switch {
		case tp == nil || (tp.GetStrVal() == "" && tp.GetIntVal() == 0):
			port = sp.GetPort()
		case tp.GetStrVal() == "":
			port = tp.GetIntVal()
		default:
			port = namedPort(p, tp.GetStrVal(), protocol)
		}
		if port == 0 {
			continue
		}
		ep := &corev1.EndpointPort{Name: sp.GetName(), Port: port, Protocol: protocol}
		if sp.AppProtocol != nil {
			ep.AppProtocol = sp.AppProtocol
		}
		out = append(out, ep)
	}
	return out
}

func namedPort(p *corev1.Pod, name, protocol string) int32 {
	for _, c := range p.GetSpec().GetContainers() {
		for _, cp := range c.GetPorts() {
			pp := cp.GetProtocol()
			if pp == "" {
				pp = "TCP"
			}
			if cp.GetName() == name && pp == protocol {
				return cp.GetContainerPort()
			}
		}
	}
	return 0
}

func portsKey(ports []*corev1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "%s/%s/%d;", p.GetName(), p.GetProtocol(), p.GetPort())
	}
	return b.String()
}

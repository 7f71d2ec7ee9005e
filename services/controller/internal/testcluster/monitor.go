package testcluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/labels"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/api"
	"bosun.dev/pkg/client"
	"bosun.dev/pkg/informer"
	"bosun.dev/services/controller/internal/controller"
)

// DialLagging connects to the apiserver through a connection whose watch
// streams deliver every event delay late: an informer on it lags behind
// the API by delay.
func (c *Cluster) DialLagging(delay time.Duration) *grpc.ClientConn {
	c.T.Helper()
	conn, err := grpc.NewClient(c.Server.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(client.MaxMessageSize)),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil || !strings.Contains(method, "/Watch") {
				return s, err
			}
			return &laggingStream{ClientStream: s, delay: delay}, nil
		}))
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(func() { conn.Close() })
	return conn
}

// laggingStream delivers each message delay after it arrived: events are
// late by delay, but a busy stream does not fall further and further behind.
type laggingStream struct {
	grpc.ClientStream
	delay time.Duration
	once  sync.Once
	msgs  chan lagged
}

type lagged struct {
	msg proto.Message
	at  time.Time
	err error
}

func (s *laggingStream) RecvMsg(m any) error {
	pm := m.(proto.Message)
	s.once.Do(func() {
		s.msgs = make(chan lagged, 4096)
		mt := pm.ProtoReflect().Type()
		go func() {
			for {
				next := mt.New().Interface()
				err := s.ClientStream.RecvMsg(next)
				s.msgs <- lagged{msg: next, at: time.Now(), err: err}
				if err != nil {
					return
				}
			}
		}()
	})
	var l lagged
	select {
	case l = <-s.msgs:
	case <-s.Context().Done():
		return s.Context().Err()
	}
	if l.err != nil {
		return l.err
	}
	if wait := time.Until(l.at.Add(s.delay)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
	proto.Reset(pm)
	proto.Merge(pm, l.msg)
	return nil
}

// Monitor watches the pods of one namespace matching a selector and checks a
// condition at every state it observes.
type Monitor struct {
	mu       sync.Mutex
	live     map[string]*corev1.Pod
	maxLive  int
	seen     int
	initial  int // states of the first list, not checked
	check    func(live []*corev1.Pod) string
	failures []string
}

// Watch starts a Monitor; check (may be nil) is called with the live pods
// after every change and returns a description of a violation, or "".
func (c *Cluster) Watch(t testing.TB, namespace, selector string, check func(live []*corev1.Pod) string) *Monitor {
	sel, err := labels.Parse(selector)
	if err != nil {
		t.Fatal(err)
	}
	m := &Monitor{live: map[string]*corev1.Pod{}, check: check, initial: -1}
	inf := informer.New(client.For[*corev1.Pod](c.Conn), informer.Options{Namespace: namespace, Logger: quiet()})
	update := func(p *corev1.Pod) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !sel.Matches(labels.Set(p.GetMetadata().GetLabels())) || !controller.IsPodActive(p) {
			delete(m.live, api.KeyOf(p))
		} else {
			if prev, ok := m.live[api.KeyOf(p)]; ok && prev.GetMetadata().GetUid() != p.GetMetadata().GetUid() && len(m.failures) < 10 {
				m.failures = append(m.failures, fmt.Sprintf("two live pods named %s (uids %s and %s)", api.KeyOf(p), prev.GetMetadata().GetUid(), p.GetMetadata().GetUid()))
			}
			m.live[api.KeyOf(p)] = p
		}
		m.observe()
	}
	inf.AddEventHandler(informer.HandlerFuncs[*corev1.Pod]{
		AddFunc:    update,
		UpdateFunc: func(_, p *corev1.Pod) { update(p) },
		DeleteFunc: func(p *corev1.Pod) {
			m.mu.Lock()
			defer m.mu.Unlock()
			delete(m.live, api.KeyOf(p))
			m.observe()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inf.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !informer.WaitForCacheSync(ctx, inf) {
		t.Fatal("monitor did not sync")
	}
	m.mu.Lock()
	m.initial = len(inf.List())
	m.mu.Unlock()
	// The first list arrives as one add per pod: wait for it before checking.
	Eventually(t, 30*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.seen < m.initial {
			return fmt.Errorf("monitor saw %d of %d pods", m.seen, m.initial)
		}
		return nil
	})
	return m
}

func (m *Monitor) observe() {
	m.seen++
	m.maxLive = max(m.maxLive, len(m.live))
	if m.check != nil && m.initial >= 0 && m.seen > m.initial {
		pods := make([]*corev1.Pod, 0, len(m.live))
		for _, p := range m.live {
			pods = append(pods, p)
		}
		if v := m.check(pods); v != "" && len(m.failures) < 10 {
			m.failures = append(m.failures, v)
		}
	}
}

// MaxLive is the largest number of live pods seen at once.
func (m *Monitor) MaxLive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxLive
}

// States is the number of states observed.
func (m *Monitor) States() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen
}

// Violations are the first violations check reported.
func (m *Monitor) Violations() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.failures...)
}

package defaultbinder_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/apitest"
	"bosun.dev/pkg/client"
	"bosun.dev/services/scheduler/internal/framework"
	"bosun.dev/services/scheduler/internal/plugins/defaultbinder"
	st "bosun.dev/services/scheduler/internal/schedtest"
)

type connHandle struct {
	*st.Handle
	conn grpc.ClientConnInterface
}

func (h connHandle) Conn() grpc.ClientConnInterface { return h.conn }

func TestBindIsCompareAndSet(t *testing.T) {
	srv := apitest.NewServer(t)
	ctx := context.Background()
	pods := client.For[*corev1.Pod](srv.Conn())
	created, err := pods.Create(ctx, st.Pod("web").Obj())
	if err != nil {
		t.Fatal(err)
	}
	pl, err := defaultbinder.New(nil, connHandle{Handle: st.NewHandle(), conn: srv.Conn()})
	if err != nil {
		t.Fatal(err)
	}
	b := pl.(framework.BindPlugin)
	pi := framework.NewPodInfo(created)

	tests := []struct {
		name  string
		pod   *framework.PodInfo
		node  string
		check func(error) bool
	}{
		{name: "a pod with another uid is refused", pod: st.Pod("web").Info(), node: "n1", check: apierrors.IsConflict},
		{name: "binds", pod: pi, node: "n1", check: func(err error) bool { return err == nil }},
		{name: "a second bind is refused", pod: pi, node: "n2", check: apierrors.IsAlreadyBound},
		{name: "a missing pod is not found", pod: st.Pod("gone").Info(), node: "n1", check: apierrors.IsNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := b.Bind(ctx, framework.NewCycleState(), tc.pod, tc.node)
			if !tc.check(s.AsError()) {
				t.Fatalf("got %v", s)
			}
		})
	}
	got, err := pods.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetSpec().GetNodeName() != "n1" {
		t.Fatalf("pod bound to %q, want n1", got.GetSpec().GetNodeName())
	}
}

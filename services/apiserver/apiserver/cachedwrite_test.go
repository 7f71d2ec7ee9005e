package apiserver_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	corev1 "bosun.dev/gen/bosun/core/v1"
	"bosun.dev/pkg/client"
)

// Writes start from the watch cache's copy, which may lag etcd. Two writers
// without resource versions, one replacing the spec side (labels), one the
// status, must never undo each other: each answer carries the other's last
// acknowledged value or a later one. A write based on a stale copy that
// went through would bring an older value back.
func TestWritesFromALaggingCacheLoseNothing(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	base, err := pods.Create(ctx, pod("default", "racy"))
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 150
	var labelAcked, statusAcked atomic.Int64
	labelAcked.Store(-1)
	statusAcked.Store(-1)
	value := func(s string) int64 {
		if s == "" {
			return -1
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	var g errgroup.Group
	g.Go(func() error {
		for i := range int64(rounds) {
			p := proto.Clone(base).(*corev1.Pod)
			p.Metadata.ResourceVersion = ""
			p.Metadata.Labels["round"] = strconv.FormatInt(i, 10)
			floor := statusAcked.Load()
			out, err := pods.Update(ctx, p)
			if err != nil {
				return err
			}
			labelAcked.Store(i)
			if got := value(out.GetStatus().GetMessage()); got < floor {
				return errors.New("a label update brought back status " + strconv.FormatInt(got, 10) + " after " + strconv.FormatInt(floor, 10) + " was acknowledged")
			}
		}
		return nil
	})
	g.Go(func() error {
		for i := range int64(rounds) {
			p := proto.Clone(base).(*corev1.Pod)
			p.Metadata.ResourceVersion = ""
			p.Status = &corev1.PodStatus{Phase: "Pending", Message: strconv.FormatInt(i, 10)}
			floor := labelAcked.Load()
			out, err := pods.UpdateStatus(ctx, p)
			if err != nil {
				return err
			}
			statusAcked.Store(i)
			if got := value(out.GetMetadata().GetLabels()["round"]); got < floor {
				return errors.New("a status update brought back label " + strconv.FormatInt(got, 10) + " after " + strconv.FormatInt(floor, 10) + " was acknowledged")
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	final, err := pods.Get(ctx, "default", "racy")
	if err != nil {
		t.Fatal(err)
	}
	if final.GetMetadata().GetLabels()["round"] != strconv.Itoa(rounds-1) || final.GetStatus().GetMessage() != strconv.Itoa(rounds-1) {
		t.Errorf("final label %q, status %q; want both %d", final.GetMetadata().GetLabels()["round"], final.GetStatus().GetMessage(), rounds-1)
	}
}

// Binds start from the cached copy too; racing binders of fresh pods still
// bind each exactly once, and the losers hear ALREADY_BOUND from etcd's copy.
func TestRacingBindsFromTheCache(t *testing.T) {
	ts := startServer(t, "")
	ctx := ctxT(t)
	pods := client.For[*corev1.Pod](ts.conn)
	binder := corev1.NewPodServiceClient(ts.conn)
	const n = 60
	var won sync.Map
	for i := range n {
		name := "p" + strconv.Itoa(i)
		if _, err := pods.Create(ctx, pod("default", name)); err != nil {
			t.Fatal(err)
		}
		var g errgroup.Group
		var wins atomic.Int32
		for _, node := range []string{"n1", "n2", "n3"} {
			g.Go(func() error {
				_, err := binder.BindPod(ctx, &corev1.BindPodRequest{Namespace: "default", Name: name, NodeName: node})
				switch {
				case err == nil:
					wins.Add(1)
					won.Store(name, node)
					return nil
				case status.Code(err) == codes.FailedPrecondition && strings.Contains(err.Error(), "already bound"):
					return nil
				default:
					return err
				}
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if wins.Load() != 1 {
			t.Fatalf("%s bound %d times", name, wins.Load())
		}
		got, err := pods.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		if node, _ := won.Load(name); got.GetSpec().GetNodeName() != node {
			t.Fatalf("%s is on %q, the winning bind said %q", name, got.GetSpec().GetNodeName(), node)
		}
	}
}

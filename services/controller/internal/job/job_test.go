package job_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	batchv1 "bosun.dev/gen/bosun/batch/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
	"bosun.dev/pkg/client"
	"bosun.dev/services/controller/internal/garbagecollector"
	"bosun.dev/services/controller/internal/job"
	"bosun.dev/services/controller/internal/testcluster"
)

func newJob(name string, command ...string) *batchv1.Job {
	return &batchv1.Job{
		Metadata: &metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &batchv1.JobSpec{Template: &corev1.PodTemplateSpec{
			Metadata: &metav1.ObjectMeta{Labels: map[string]string{"job": name}},
			Spec:     &corev1.PodSpec{RestartPolicy: "Never", Containers: []*corev1.Container{{Name: "c", Image: "busybox", Command: command}}},
		}},
	}
}

// start runs the Job controller and the garbage collector. The simulated
// node-agent finishes pods as testcluster's default does (a command with
// "exit 1" fails, others succeed), except those with image "sleeper", which
// run until deleted.
func start(t *testing.T) *testcluster.Cluster {
	c := testcluster.Start(t, testcluster.Options{Nodes: 2})
	c.Outcome = func(p *corev1.Pod) testcluster.Outcome {
		if p.Spec.Containers[0].Image == "sleeper" {
			return testcluster.Outcome{Phase: "Running", Ready: true}
		}
		if len(p.Spec.Containers[0].Command) > 0 && p.Spec.Containers[0].Command[0] == "exit 1" {
			return testcluster.Outcome{Phase: "Failed"}
		}
		return testcluster.Outcome{Phase: "Succeeded"}
	}
	cc := c.Context(nil)
	testcluster.Run(t, cc, job.New(cc), garbagecollector.New(cc))
	return c
}

func waitCondition(t *testing.T, c *testcluster.Cluster, name, cond, reason string) *batchv1.Job {
	t.Helper()
	var j *batchv1.Job
	testcluster.Eventually(t, 30*time.Second, func() error {
		var err error
		j, err = client.For[*batchv1.Job](c.Conn).Get(context.Background(), "default", name)
		if err != nil {
			return err
		}
		for _, c := range j.GetStatus().GetConditions() {
			if c.Type == cond && c.Status == "True" && c.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("status %v, want condition %s %s", j.GetStatus(), cond, reason)
	})
	return j
}

func TestJobCompletesWithinParallelism(t *testing.T) {
	c := start(t)
	mon := c.Watch(t, "default", "job=batch", func(live []*corev1.Pod) string {
		if len(live) > 2 {
			return fmt.Sprintf("%d active pods with parallelism 2", len(live))
		}
		return ""
	})
	j := newJob("batch")
	j.Spec.Completions, j.Spec.Parallelism = proto.Int32(5), proto.Int32(2)
	if _, err := client.For[*batchv1.Job](c.Conn).Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, c, "batch", job.ConditionComplete, "")
	if got.Status.Succeeded != 5 || got.Status.Failed != 0 || got.Status.Active != 0 || got.Status.CompletionTime == nil {
		t.Fatalf("status %v, want 5 succeeded", got.Status)
	}
	if n := len(c.Pods("default", "job=batch")); n != 5 {
		t.Fatalf("%d pods for 5 completions", n)
	}
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

func TestJobFailsAfterBackoffLimit(t *testing.T) {
	c := start(t)
	j := newJob("flaky", "exit 1")
	j.Spec.BackoffLimit = proto.Int32(2)
	if _, err := client.For[*batchv1.Job](c.Conn).Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, c, "flaky", job.ConditionFailed, job.ReasonBackoffLimitExceeded)
	if got.Status.Failed != 3 {
		t.Fatalf("%d failed pods with backoffLimit 2, want 3", got.Status.Failed)
	}
}

// A Job past activeDeadlineSeconds fails and its running pods are deleted;
// with ttlSecondsAfterFinished it is then deleted, pods and all.
func TestJobDeadlineAndTTL(t *testing.T) {
	c := start(t)
	j := newJob("slow")
	j.Spec.Template.Spec.Containers[0].Image = "sleeper"
	j.Spec.Parallelism = proto.Int32(2)
	j.Spec.ActiveDeadlineSeconds = proto.Int64(1)
	j.Spec.TtlSecondsAfterFinished = proto.Int32(1)
	if _, err := client.For[*batchv1.Job](c.Conn).Create(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, c, "slow", job.ConditionFailed, job.ReasonDeadlineExceeded)
	testcluster.Eventually(t, 30*time.Second, func() error {
		_, err := client.For[*batchv1.Job](c.Conn).Get(context.Background(), "default", "slow")
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("job still there after its TTL: %v", err)
		}
		if n := len(c.Pods("default", "job=slow")); n != 0 {
			return fmt.Errorf("%d pods outlive their job", n)
		}
		return nil
	})
}

// A foreground deletion of a running Job ends: the controller starts no
// pod in place of those the garbage collector removes.
func TestForegroundDeletionOfARunningJobEnds(t *testing.T) {
	c := start(t)
	mon := c.Watch(t, "default", "job=long", func(live []*corev1.Pod) string {
		if len(live) > 2 {
			return fmt.Sprintf("%d live pods with parallelism 2", len(live))
		}
		return ""
	})
	j := newJob("long")
	j.Spec.Template.Spec.Containers[0].Image = "sleeper"
	j.Spec.Completions, j.Spec.Parallelism = proto.Int32(6), proto.Int32(2)
	jobs := client.For[*batchv1.Job](c.Conn)
	ctx := context.Background()
	if _, err := jobs.Create(ctx, j); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if n := len(c.Pods("default", "job=long")); n != 2 {
			return fmt.Errorf("%d pods, want 2 running", n)
		}
		return nil
	})
	if _, err := jobs.Delete(ctx, "default", "long", client.DeleteOptions{PropagationPolicy: metav1.DeletePropagation_DELETE_PROPAGATION_FOREGROUND}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 30*time.Second, func() error {
		if _, err := jobs.Get(ctx, "default", "long"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("job still there (%v), with %d pods", err, len(c.Pods("default", "job=long")))
		}
		if n := len(c.Pods("default", "job=long")); n > 0 {
			return fmt.Errorf("%d pods left", n)
		}
		return nil
	})
	if v := mon.Violations(); len(v) > 0 {
		t.Fatal(v)
	}
}

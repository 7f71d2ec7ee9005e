package deployment

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func rs(spec, statusReplicas, available int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		Metadata: &metav1.ObjectMeta{},
		Spec:     &appsv1.ReplicaSetSpec{Replicas: proto.Int32(spec)},
		Status:   &appsv1.ReplicaSetStatus{Replicas: statusReplicas, AvailableReplicas: available},
	}
}

func TestFenceposts(t *testing.T) {
	for _, tc := range []struct {
		replicas                   int32
		surge, unavailable         *metav1.IntOrString
		wantSurge, wantUnavailable int32
	}{
		{10, &metav1.IntOrString{StrVal: "25%"}, &metav1.IntOrString{StrVal: "25%"}, 3, 2},
		{10, &metav1.IntOrString{IntVal: 3}, &metav1.IntOrString{IntVal: 0}, 3, 0},
		{1, &metav1.IntOrString{StrVal: "25%"}, &metav1.IntOrString{StrVal: "25%"}, 1, 0},
		{3, &metav1.IntOrString{IntVal: 0}, &metav1.IntOrString{StrVal: "10%"}, 0, 1}, // both zero: one may be unavailable
		{100, &metav1.IntOrString{StrVal: "1%"}, &metav1.IntOrString{StrVal: "99%"}, 1, 99},
	} {
		d := &appsv1.Deployment{Spec: &appsv1.DeploymentSpec{Replicas: proto.Int32(tc.replicas), Strategy: &appsv1.DeploymentStrategy{
			Type: RollingUpdate, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: tc.surge, MaxUnavailable: tc.unavailable}}}}
		s, u, err := Fenceposts(d)
		if err != nil || s != tc.wantSurge || u != tc.wantUnavailable {
			t.Errorf("Fenceposts(%d, %v, %v) = %d, %d, %v; want %d, %d", tc.replicas, tc.surge, tc.unavailable, s, u, err, tc.wantSurge, tc.wantUnavailable)
		}
	}
	bad := &appsv1.Deployment{Spec: &appsv1.DeploymentSpec{Replicas: proto.Int32(3), Strategy: &appsv1.DeploymentStrategy{
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &metav1.IntOrString{StrVal: "lots"}}}}}
	if _, _, err := Fenceposts(bad); err == nil {
		t.Error("Fenceposts accepted maxSurge \"lots\"")
	}
}

func TestNewReplicasNeverExceedsSurge(t *testing.T) {
	for _, tc := range []struct {
		name  string
		old   []*appsv1.ReplicaSet
		newRS *appsv1.ReplicaSet
		want  int32
	}{
		{"first step", []*appsv1.ReplicaSet{rs(10, 10, 10)}, rs(0, 0, 0), 3},
		{"surge used up", []*appsv1.ReplicaSet{rs(10, 10, 10)}, rs(3, 3, 0), 3},
		{"old shrunk but pods not gone", []*appsv1.ReplicaSet{rs(8, 10, 10)}, rs(3, 3, 3), 3},
		{"old pods gone", []*appsv1.ReplicaSet{rs(8, 8, 8)}, rs(3, 3, 3), 5},
		{"never past replicas", []*appsv1.ReplicaSet{rs(0, 0, 0)}, rs(9, 9, 9), 10},
	} {
		all := append(append([]*appsv1.ReplicaSet(nil), tc.old...), tc.newRS)
		if got := NewReplicas(10, 3, all, tc.newRS); got != tc.want {
			t.Errorf("%s: NewReplicas = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestScaleDownOldKeepsMinimumAvailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		old   []*appsv1.ReplicaSet
		newRS *appsv1.ReplicaSet
		want  []int32
	}{
		{"new not ready yet", []*appsv1.ReplicaSet{rs(10, 10, 10)}, rs(3, 3, 0), []int32{8}},
		{"new ready", []*appsv1.ReplicaSet{rs(8, 8, 8)}, rs(3, 3, 3), []int32{5}},
		{"unhealthy old go first, beyond the budget", []*appsv1.ReplicaSet{rs(10, 10, 6)}, rs(3, 3, 0), []int32{8}},
		{"oldest first", []*appsv1.ReplicaSet{rs(2, 2, 2), rs(8, 8, 8)}, rs(3, 3, 3), []int32{0, 5}},
		{"nothing to spare", []*appsv1.ReplicaSet{rs(8, 8, 8)}, rs(5, 5, 0), []int32{8}},
	} {
		got := ScaleDownOld(10, 2, tc.old, tc.newRS)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ScaleDownOld = %v, want %v", tc.name, got, tc.want)
		}
		var avail int32
		for i, o := range tc.old {
			avail += min(o.Status.AvailableReplicas, got[i])
		}
		avail += tc.newRS.Status.AvailableReplicas
		if before := tc.newRS.Status.AvailableReplicas + sumAvail(tc.old); avail < min(8, before) {
			t.Errorf("%s: leaves %d available, below 8", tc.name, avail)
		}
	}
}

func sumAvail(sets []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, s := range sets {
		n += s.Status.AvailableReplicas
	}
	return n
}

func TestProportionalSizes(t *testing.T) {
	for _, tc := range []struct {
		sizes  []int32
		target int32
		want   []int32
	}{
		{[]int32{10, 3}, 26, []int32{20, 6}},
		{[]int32{5, 5}, 15, []int32{8, 7}},
		{[]int32{8, 5}, 6, []int32{4, 2}},
		{[]int32{0, 0}, 4, []int32{4, 0}},
		{[]int32{7}, 0, []int32{0}},
	} {
		got := ProportionalSizes(tc.sizes, tc.target)
		var sum int32
		for _, g := range got {
			sum += g
		}
		if !reflect.DeepEqual(got, tc.want) || sum != tc.target {
			t.Errorf("ProportionalSizes(%v, %d) = %v, want %v", tc.sizes, tc.target, got, tc.want)
		}
	}
}

func TestHistoryToDeleteKeepsTheNewest(t *testing.T) {
	var old []*appsv1.ReplicaSet
	for i, rev := range []string{"3", "1", "4", "2"} {
		r := rs(0, 0, 0)
		r.Metadata.Name = "rs" + rev
		r.Metadata.Annotations = map[string]string{RevisionAnnotation: rev}
		if i == 2 {
			r.Spec.Replicas = proto.Int32(1) // still running: never deleted
		}
		old = append(old, r)
	}
	got := HistoryToDelete(old, 1)
	if len(got) != 2 || got[0].Metadata.Name != "rs1" || got[1].Metadata.Name != "rs2" {
		t.Fatalf("HistoryToDelete = %v, want rs1 and rs2", got)
	}
}

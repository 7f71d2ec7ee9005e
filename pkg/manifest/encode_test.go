package manifest

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
)

func TestMarshalYAMLShape(t *testing.T) {
	d := &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{
			Name: "web", Namespace: "default", Generation: 9007199254740993,
			CreationTimestamp: timestamppb.New(time.Date(2024, 5, 1, 10, 0, 0, 0, time.FixedZone("CEST", 7200))),
		},
		Spec: &appsv1.DeploymentSpec{
			Replicas: proto.Int32(0),
			Paused:   false,
			Strategy: &appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge:       &metav1.IntOrString{StrVal: "25%"},
				MaxUnavailable: &metav1.IntOrString{IntVal: 0},
			}},
		},
		Status: &appsv1.DeploymentStatus{},
	}
	got, err := MarshalYAML(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  generation: 9007199254740993
  creationTimestamp: "2024-05-01T08:00:00Z"
spec:
  replicas: 0
  strategy:
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
status: {}
`
	if string(got) != want {
		t.Errorf("MarshalYAML:\n%s\nwant:\n%s", got, want)
	}
}

func TestMarshalJSONShape(t *testing.T) {
	s := &corev1.Secret{
		Metadata: &metav1.ObjectMeta{Name: "db"},
		Data:     map[string][]byte{"password": []byte("s3cr3t")},
		Type:     "Opaque",
	}
	got, err := MarshalJSON(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "db"
    },
    "data": {
        "password": "czNjcjN0"
    },
    "type": "Opaque"
}
`
	if string(got) != want {
		t.Errorf("MarshalJSON:\n%s\nwant:\n%s", got, want)
	}
}

func TestEncode(t *testing.T) {
	p := &corev1.Pod{
		Metadata: &metav1.ObjectMeta{Name: "web", DeletionGracePeriodSeconds: proto.Int64(30)},
		Status:   &corev1.PodStatus{PodIp: "10.0.0.1", StartTime: &timestamppb.Timestamp{Seconds: 1714557600, Nanos: 500_000_000}},
	}
	m, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if m["apiVersion"] != "v1" || m["kind"] != "Pod" {
		t.Errorf("apiVersion, kind = %v, %v", m["apiVersion"], m["kind"])
	}
	md := m["metadata"].(map[string]any)
	if md["deletionGracePeriodSeconds"] != int64(30) {
		t.Errorf("deletionGracePeriodSeconds = %#v, want int64 30", md["deletionGracePeriodSeconds"])
	}
	st := m["status"].(map[string]any)
	if st["podIP"] != "10.0.0.1" || st["startTime"] != "2024-05-01T10:00:00.5Z" {
		t.Errorf("status = %v", st)
	}
	if _, ok := m["spec"]; ok {
		t.Errorf("unset spec was encoded: %v", m["spec"])
	}
}

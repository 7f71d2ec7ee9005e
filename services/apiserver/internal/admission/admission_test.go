package admission

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/apierrors"
)

func ns(level string) *corev1.Namespace {
	n := &corev1.Namespace{Metadata: &metav1.ObjectMeta{Name: "ns"}}
	if level != "" {
		n.Metadata.Labels = map[string]string{EnforceLabel: level}
	}
	return n
}

func ptr[T any](v T) *T { return &v }

func basePod() *corev1.Pod {
	return &corev1.Pod{Metadata: &metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "i"}}}}
}

func restrictedPod() *corev1.Pod {
	p := basePod()
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)}
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
	return p
}

func TestPodSecurity(t *testing.T) {
	tests := []struct {
		name   string
		level  string
		mutate func(*corev1.Pod)
		fields []string // want refused naming these; none: admitted
	}{
		{"plain pod, no label", "", func(*corev1.Pod) {}, nil},
		{"privileged, privileged level", LevelPrivileged, func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}, nil},
		{"plain pod, baseline", LevelBaseline, func(*corev1.Pod) {}, nil},
		{"privileged, baseline", LevelBaseline, func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}, []string{"spec.containers[0].securityContext.privileged"}},
		{"host namespaces, baseline", LevelBaseline, func(p *corev1.Pod) {
			p.Spec.HostNetwork, p.Spec.HostPid, p.Spec.HostIpc = true, true, true
		}, []string{"spec.hostNetwork", "spec.hostPID", "spec.hostIPC"}},
		{"hostPath and host port, baseline", LevelBaseline, func(p *corev1.Pod) {
			p.Spec.Volumes = []*corev1.Volume{{Name: "e", Source: &corev1.Volume_EmptyDir{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, {Name: "h", Source: &corev1.Volume_HostPath{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			p.Spec.Containers[0].Ports = []*corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, []string{"spec.volumes[1].hostPath", "spec.containers[0].ports[0].hostPort"}},
		{"SYS_ADMIN, baseline", LevelBaseline, func(p *corev1.Pod) {
			p.Spec.InitContainers = []*corev1.Container{{Name: "i", SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []string{"CHOWN", "SYS_ADMIN"}}}}}
		}, []string{"spec.initContainers[0].securityContext.capabilities.add[1]"}},
		{"plain pod, restricted", LevelRestricted, func(*corev1.Pod) {}, []string{"spec.containers[0].securityContext.runAsNonRoot", "spec.containers[0].securityContext.allowPrivilegeEscalation"}},
		{"conforming pod, restricted", LevelRestricted, func(p *corev1.Pod) { *p = *restrictedPod() }, nil},
		{"root uid, restricted", LevelRestricted, func(p *corev1.Pod) {
			*p = *restrictedPod()
			p.Spec.SecurityContext.RunAsUser = ptr(int64(0))
		}, []string{"spec.securityContext.runAsUser"}},
		{"container overrides runAsNonRoot, restricted", LevelRestricted, func(p *corev1.Pod) {
			*p = *restrictedPod()
			p.Spec.Containers[0].SecurityContext.RunAsNonRoot = ptr(false)
		}, []string{"spec.containers[0].securityContext.runAsNonRoot"}},
		{"CHOWN, restricted", LevelRestricted, func(p *corev1.Pod) {
			*p = *restrictedPod()
			p.Spec.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []string{"NET_BIND_SERVICE", "CHOWN"}}
		}, []string{"spec.containers[0].securityContext.capabilities.add[1]"}},
		{"unknown level enforces restricted", "strict", func(*corev1.Pod) {}, []string{"spec.containers[0].securityContext.runAsNonRoot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePod()
			tt.mutate(p)
			err := Chain{PodSecurity{}}.Admit(context.Background(), &Request{Operation: Create, Object: p, Namespace: ns(tt.level)})
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if status.Code(err) != codes.PermissionDenied || apierrors.Reason(err) != ReasonForbidden {
				t.Fatalf("err %v, want PermissionDenied/FORBIDDEN", err)
			}
			got := map[string]bool{}
			for _, v := range apierrors.FieldViolations(err) {
				got[v.GetField()] = true
			}
			for _, f := range tt.fields {
				if !got[f] || !strings.Contains(err.Error(), f) {
					t.Errorf("refusal does not name %s: %v", f, err)
				}
			}
			if !strings.Contains(err.Error(), "PodSecurity") {
				t.Errorf("refusal does not name the policy: %v", err)
			}
		})
	}
}

func TestDefaultTolerations(t *testing.T) {
	c, err := New([]string{DefaultTolerationsName}, Options{DefaultTolerationSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	p := basePod()
	p.Spec.Tolerations = []*corev1.Toleration{{Key: TaintUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: ptr(int64(5))}}
	if err := c.Admit(context.Background(), &Request{Operation: Create, Object: p}); err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Tolerations) != 2 {
		t.Fatalf("tolerations %v", p.Spec.Tolerations)
	}
	if got := p.Spec.Tolerations[0].GetTolerationSeconds(); got != 5 {
		t.Errorf("the pod's own unreachable toleration was changed to %d", got)
	}
	if nr := p.Spec.Tolerations[1]; nr.GetKey() != TaintNotReady || nr.GetTolerationSeconds() != 30 || nr.GetEffect() != "NoExecute" {
		t.Errorf("not-ready toleration %v", nr)
	}
	// Updates are left alone.
	q := basePod()
	if err := c.Admit(context.Background(), &Request{Operation: Update, Object: q}); err != nil || len(q.Spec.Tolerations) != 0 {
		t.Errorf("update got tolerations %v (%v)", q.Spec.Tolerations, err)
	}
	if _, err := New([]string{"NoSuchPlugin"}, Options{}); err == nil || !strings.Contains(err.Error(), `"NoSuchPlugin"`) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("unknown plugin: %v", err)
	}
}

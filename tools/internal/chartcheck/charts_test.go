package chartcheck_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"bosun.dev/tools/internal/chartcheck"
)

const (
	release   = "bosun"
	namespace = "bosun"
)

// services are the charts of Bosun's services, one per service.
var services = []string{"apiserver", "scheduler", "controller", "health-checker", "service-proxy", "node-agent"}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's folder")
		}
		dir = parent
	}
}

// helm finds the pinned helm: $HELM, else .bin/tools/helm (`make
// devtools`), else PATH. Without one the chart tests skip, except in CI.
func helm(t *testing.T, root string) chartcheck.Helm {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(root, ".bin", "tools", "helm")
		if _, err := os.Stat(bin); err != nil {
			bin, _ = exec.LookPath("helm")
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no helm binary: run `make devtools` (or set HELM)")
		}
		t.Skip("no helm binary: run `make devtools` (or set HELM)")
	}
	return chartcheck.Helm{Binary: bin, Home: t.TempDir()}
}

// prepared copies charts/ and builds the charts' dependencies.
func prepared(t *testing.T) (chartcheck.Helm, string) {
	t.Helper()
	root := repoRoot(t)
	h := helm(t, root)
	dir := t.TempDir()
	if err := h.Prepare(context.Background(), filepath.Join(root, "charts"), dir); err != nil {
		t.Fatal(err)
	}
	return h, dir
}

// render lints and templates a chart and checks every manifest.
func render(t *testing.T, h chartcheck.Helm, chart string, values ...string) []chartcheck.Object {
	t.Helper()
	ctx := context.Background()
	if err := h.Lint(ctx, chart, values...); err != nil {
		t.Fatal(err)
	}
	out, err := h.Template(ctx, chartcheck.Render{Release: release, Namespace: namespace, Chart: chart, ValuesFiles: values})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := chartcheck.Decode(chartcheck.Scheme(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := chartcheck.Validate(objs); err != nil {
		t.Fatal(err)
	}
	return objs
}

func kinds(objs []chartcheck.Object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.GVK.Kind]++
	}
	return m
}

func find[T any](t *testing.T, objs []chartcheck.Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.Object.(T); ok && o.Meta.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T %q rendered", zero, name)
	return zero
}

func args(spec *corev1.PodSpec) []string { return spec.Containers[0].Args }

func TestCharts(t *testing.T) {
	h, dir := prepared(t)
	umbrella := filepath.Join(dir, "bosun")

	t.Run("umbrella default", func(t *testing.T) {
		objs := render(t, h, umbrella)
		want := map[string]int{"StatefulSet": 1, "Deployment": 4, "DaemonSet": 1, "Service": 5, "ServiceAccount": 6, "Secret": 6}
		if got := kinds(objs); !maps(got, want) {
			t.Errorf("kinds %v, want %v", got, want)
		}
		sts := find[*appsv1.StatefulSet](t, objs, "bosun-apiserver")
		if *sts.Spec.Replicas != 1 || len(sts.Spec.VolumeClaimTemplates) != 1 {
			t.Errorf("apiserver: %d replicas, %d claim templates; want the embedded etcd on one replica with a volume", *sts.Spec.Replicas, len(sts.Spec.VolumeClaimTemplates))
		}
		if a := args(&sts.Spec.Template.Spec); !slices.Contains(a, "--data-dir=/var/lib/bosun") || slices.ContainsFunc(a, prefix("--etcd-endpoints")) {
			t.Errorf("apiserver args %v: want --data-dir and no --etcd-endpoints", a)
		}
		if a := args(&sts.Spec.Template.Spec); !slices.Contains(a, "--client-ca-file=/etc/bosun/tls/ca.crt") {
			t.Errorf("apiserver args %v: clients are not authenticated by the generated CA", a)
		}
		// The generated CA signs node certificates and the apiserver's own
		// towards node-agents.
		if a := args(&sts.Spec.Template.Spec); !slices.Contains(a, "--cluster-signing-cert-file=/etc/bosun/signing/tls.crt") ||
			!slices.Contains(a, "--cluster-signing-key-file=/etc/bosun/signing/tls.key") {
			t.Errorf("apiserver args %v: no cluster signing CA", a)
		}
		signing := false
		for _, v := range sts.Spec.Template.Spec.Volumes {
			signing = signing || (v.Name == "signing" && v.Secret != nil && v.Secret.SecretName == "bosun-apiserver-ca")
		}
		if !signing {
			t.Error("apiserver does not mount the CA Secret bosun-apiserver-ca")
		}
		secret := find[*corev1.Secret](t, objs, "bosun-apiserver-tls")
		ca := checkServingCert(t, secret)
		for _, svc := range []string{"scheduler", "controller", "health-checker", "service-proxy"} {
			d := find[*appsv1.Deployment](t, objs, "bosun-"+svc)
			a := args(&d.Spec.Template.Spec)
			for _, w := range []string{"--apiserver=bosun-apiserver.bosun.svc:6443", "--apiserver-ca-file=/etc/bosun/apiserver-ca/ca.crt", "--log-level=info"} {
				if !slices.Contains(a, w) {
					t.Errorf("%s args %v: no %s", svc, a, w)
				}
			}
			if got := d.Spec.Template.Spec.Volumes[0].Secret.SecretName; got != secret.Name {
				t.Errorf("%s reads the apiserver CA from %q, the chart makes %q", svc, got, secret.Name)
			}
			if !slices.Contains(a, "--client-cert-file=/etc/bosun/client/tls.crt") || d.Spec.Template.Spec.Volumes[1].Secret.SecretName != "bosun-"+svc+"-client" {
				t.Errorf("%s does not present the client certificate bosun-%s-client: args %v", svc, svc, a)
			}
			checkClientCert(t, find[*corev1.Secret](t, objs, "bosun-"+svc+"-client"), ca, "bosun-"+svc)
			// Its own listener serves mutual TLS with the same certificate,
			// under its Service's name; readiness asks /readyz over HTTP, as
			// Kubernetes' gRPC probes speak no TLS.
			for _, w := range []string{"--tls-cert-file=/etc/bosun/client/tls.crt", "--tls-private-key-file=/etc/bosun/client/tls.key", "--client-ca-file=/etc/bosun/apiserver-ca/ca.crt"} {
				if !slices.Contains(a, w) {
					t.Errorf("%s args %v: no %s", svc, a, w)
				}
			}
			checkServesAs(t, find[*corev1.Secret](t, objs, "bosun-"+svc+"-client"), ca, "bosun-"+svc+".bosun.svc")
			if rp := d.Spec.Template.Spec.Containers[0].ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/readyz" {
				t.Errorf("%s readiness probe %+v, want GET /readyz", svc, rp)
			}
			sc := d.Spec.Template.Spec.SecurityContext
			if sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s does not run as the images' non-root user 65532", svc)
			}
		}
		ds := find[*appsv1.DaemonSet](t, objs, "bosun-node-agent")
		// Each node-agent uses its node's own certificate from the host, for
		// the apiserver and for its listener; none is shared.
		for _, w := range []string{"--client-cert-file=/etc/bosun/pki/node-$(NODE_NAME).crt", "--client-key-file=/etc/bosun/pki/node-$(NODE_NAME).key",
			"--tls-cert-file=/etc/bosun/pki/node-$(NODE_NAME).crt", "--tls-private-key-file=/etc/bosun/pki/node-$(NODE_NAME).key", "--client-ca-file=/etc/bosun/pki/ca.crt"} {
			if a := args(&ds.Spec.Template.Spec); !slices.Contains(a, w) {
				t.Errorf("node-agent args %v: no %s", a, w)
			}
		}
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Name == "client-cert" {
				t.Errorf("node-agents share the client certificate Secret %s; each needs its node's own", v.Secret.SecretName)
			}
		}
		if !ds.Spec.Template.Spec.HostNetwork {
			t.Error("node-agent is not on the host network")
		}
		paths := map[string]corev1.HostPathType{}
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.HostPath != nil {
				paths[v.HostPath.Path] = *v.HostPath.Type
			}
		}
		for p, typ := range map[string]corev1.HostPathType{
			"/run/containerd/containerd.sock": corev1.HostPathSocket, "/opt/cni/bin": corev1.HostPathDirectory,
			"/var/lib/cni": corev1.HostPathDirectoryOrCreate, "/var/lib/bosun/node-agent": corev1.HostPathDirectoryOrCreate,
		} {
			if paths[p] != typ {
				t.Errorf("node-agent host path %s: type %q, want %q (all: %v)", p, paths[p], typ, paths)
			}
		}
		c := ds.Spec.Template.Spec.Containers[0]
		for _, m := range c.VolumeMounts {
			if m.MountPath == "/var/lib/bosun/node-agent" && (m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional) {
				t.Errorf("node-agent state folder mounted without Bidirectional propagation: %+v", m)
			}
		}
		if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
			t.Error("node-agent is not privileged")
		}
	})

	t.Run("node-agent TLS bootstrap", func(t *testing.T) {
		values := filepath.Join(t.TempDir(), "bootstrap.yaml")
		if err := os.WriteFile(values, []byte("node-agent:\n  bootstrap:\n    tokenFile: /etc/bosun/bootstrap-token\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		objs := render(t, h, umbrella, values)
		ds := find[*appsv1.DaemonSet](t, objs, "bosun-node-agent")
		a := args(&ds.Spec.Template.Spec)
		// The node-agent requests its certificate into pkiDir with the
		// token; the same files then authenticate it to the apiserver.
		for _, w := range []string{"--bootstrap-token-file=/etc/bosun/bootstrap-token",
			"--tls-cert-file=/etc/bosun/pki/node-$(NODE_NAME).crt", "--tls-private-key-file=/etc/bosun/pki/node-$(NODE_NAME).key",
			"--client-ca-file=/etc/bosun/apiserver-ca/ca.crt"} {
			if !slices.Contains(a, w) {
				t.Errorf("node-agent args %v: no %s", a, w)
			}
		}
		if slices.ContainsFunc(a, prefix("--client-cert-file")) {
			t.Errorf("node-agent args %v: a client certificate besides the bootstrapped one", a)
		}
		mounts := map[string]bool{} // path -> read-only
		for _, m := range ds.Spec.Template.Spec.Containers[0].VolumeMounts {
			mounts[m.MountPath] = m.ReadOnly
		}
		if ro, ok := mounts["/etc/bosun/pki"]; !ok || ro {
			t.Errorf("pkiDir mounted %v (read-only %v); the node-agent must write its certificate there", ok, ro)
		}
		if ro, ok := mounts["/etc/bosun/bootstrap-token"]; !ok || !ro {
			t.Errorf("token file mounted %v (read-only %v), want read-only", ok, ro)
		}
	})

	t.Run("umbrella HA", func(t *testing.T) {
		objs := render(t, h, umbrella, filepath.Join(umbrella, "values-ha.yaml"))
		want := map[string]int{"Deployment": 5, "DaemonSet": 1, "PodDisruptionBudget": 5, "Service": 5, "ServiceAccount": 6, "Secret": 6}
		if got := kinds(objs); !maps(got, want) {
			t.Errorf("kinds %v, want %v", got, want)
		}
		api := find[*appsv1.Deployment](t, objs, "bosun-apiserver")
		a := args(&api.Spec.Template.Spec)
		if *api.Spec.Replicas != 3 || !slices.Contains(a, "--etcd-endpoints=https://etcd-0.etcd:2379,https://etcd-1.etcd:2379,https://etcd-2.etcd:2379") ||
			!slices.Contains(a, "--etcd-cafile=/etc/bosun/etcd/ca.crt") || slices.ContainsFunc(a, prefix("--data-dir")) {
			t.Errorf("HA apiserver: %d replicas, args %v", *api.Spec.Replicas, a)
		}
		for _, svc := range []string{"scheduler", "controller", "health-checker"} {
			d := find[*appsv1.Deployment](t, objs, "bosun-"+svc)
			if *d.Spec.Replicas != 3 || !slices.Contains(args(&d.Spec.Template.Spec), "--leader-elect=true") {
				t.Errorf("HA %s: %d replicas, args %v", svc, *d.Spec.Replicas, args(&d.Spec.Template.Spec))
			}
			if d.Spec.Template.Spec.Affinity == nil || d.Spec.Template.Spec.Affinity.PodAntiAffinity == nil {
				t.Errorf("HA %s has no pod anti-affinity", svc)
			}
		}
	})

	for _, svc := range services {
		t.Run(svc+" alone", func(t *testing.T) {
			objs := render(t, h, filepath.Join(dir, svc))
			if len(objs) == 0 {
				t.Fatal("rendered nothing")
			}
			for _, o := range objs {
				if o.Meta.GetNamespace() != namespace || o.Meta.GetLabels()["app.kubernetes.io/name"] != svc {
					t.Errorf("%s: namespace %q, labels %v", o, o.Meta.GetNamespace(), o.Meta.GetLabels())
				}
			}
		})
	}
}

func prefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

func maps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func parseCert(t *testing.T, s *corev1.Secret, key string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(s.Data[key])
	if block == nil {
		t.Fatalf("%s: %s holds no PEM block", s.Name, key)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %s: %v", s.Name, key, err)
	}
	return c
}

// checkServingCert verifies that the generated certificate is signed by
// the generated CA and valid for the names clients dial; it returns the CA.
func checkServingCert(t *testing.T, s *corev1.Secret) *x509.CertPool {
	t.Helper()
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %s", s.Type)
	}
	ca, leaf := parseCert(t, s, "ca.crt"), parseCert(t, s, "tls.crt")
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"bosun-apiserver.bosun.svc", "bosun-apiserver", "localhost", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	if block, _ := pem.Decode(s.Data["tls.key"]); block == nil {
		t.Error("tls.key holds no PEM block")
	}
	return roots
}

// checkClientCert verifies that a client certificate names the user cn and
// is signed by the CA the apiserver authenticates clients with.
func checkClientCert(t *testing.T, s *corev1.Secret, roots *x509.CertPool, cn string) {
	t.Helper()
	c := parseCert(t, s, "tls.crt")
	if c.Subject.CommonName != cn {
		t.Errorf("%s: common name %q, want %q", s.Name, c.Subject.CommonName, cn)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("%s: not a client certificate of the cluster CA: %v", s.Name, err)
	}
}

// checkServesAs checks that the Secret's certificate of the cluster CA
// serves under name.
func checkServesAs(t *testing.T, s *corev1.Secret, roots *x509.CertPool, name string) {
	t.Helper()
	c := parseCert(t, s, "tls.crt")
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("%s: does not serve as %s: %v", s.Name, name, err)
	}
}

// Values that cannot work are refused by the schema or the templates with
// a message naming the value.
func TestChartsRefuseBadValues(t *testing.T) {
	h, dir := prepared(t)
	umbrella := filepath.Join(dir, "bosun")
	tests := []struct {
		name string
		set  []string
		want []string
	}{
		{"misspelt chart", []string{"schedular.replicas=2"}, []string{"additional properties 'schedular' not allowed"}},
		{"misspelt value", []string{"scheduler.replica=2"}, []string{"scheduler:", "additional properties 'replica' not allowed"}},
		{"replicas not a number", []string{"scheduler.replicas=three"}, []string{"scheduler:", "/replicas", "want integer"}},
		{"negative replicas", []string{"controller.replicas=-1"}, []string{"controller:", "/replicas", "minimum"}},
		{"unknown log level", []string{"health-checker.logLevel=verbose"}, []string{"health-checker:", "/logLevel"}},
		{"port out of range", []string{"service-proxy.port=70000"}, []string{"service-proxy:", "/port", "maximum"}},
		{"extra arg without a dash", []string{"node-agent.extraArgs[0]=verbose"}, []string{"node-agent:", "/extraArgs/0"}},
		{"lease duration without unit", []string{"scheduler.leaderElection.leaseDuration=15"}, []string{"/leaderElection/leaseDuration"}},
		{"etcd endpoint without scheme", []string{"apiserver.etcd.endpoints[0]=etcd-0:2379", "apiserver.replicas=3"}, []string{"apiserver:", "/etcd/endpoints/0"}},
		{"apiserver address without port", []string{"global.apiserver.address=bosun-apiserver"}, []string{"/global/apiserver/address"}},
		{"relative host path", []string{"node-agent.cni.binDir=opt/cni/bin"}, []string{"node-agent:", "/cni/binDir"}},
		{"relative bootstrap token file", []string{"node-agent.bootstrap.tokenFile=token"}, []string{"node-agent:", "/bootstrap/tokenFile"}},
		{"pull policy", []string{"apiserver.image.pullPolicy=Sometimes"}, []string{"/image/pullPolicy"}},
		{"replicated embedded etcd", []string{"apiserver.replicas=3"}, []string{"replicas is 3 but etcd.endpoints is empty"}},
		{"etcd TLS without external etcd", []string{"apiserver.etcd.tls.secretName=etcd-client"}, []string{"etcd.tls.secretName is set but etcd.endpoints is empty"}},
		{"no serving certificate", []string{"apiserver.tls.create=false"}, []string{"tls.create is false and tls.secretName is empty"}},
		{"replicas without leader election", []string{"controller.replicas=2", "controller.leaderElection.enabled=false"}, []string{"controller: replicas is 2 but leaderElection.enabled is false"}},
		{"host path name taken", []string{"node-agent.extraHostPaths[0].name=logs", "node-agent.extraHostPaths[0].path=/var/log/extra"}, []string{`two host paths are named "logs"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Template(context.Background(), chartcheck.Render{Release: release, Namespace: namespace, Chart: umbrella, Set: tt.set})
			if err == nil {
				t.Fatalf("--set %v rendered", tt.set)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Overrides reach every chart: the registry and tag of the images, plain
// text to the apiserver, extra arguments after the templated ones.
func TestChartsOverrides(t *testing.T) {
	h, dir := prepared(t)
	out, err := h.Template(context.Background(), chartcheck.Render{
		Release: release, Namespace: namespace, Chart: filepath.Join(dir, "bosun"),
		Set: []string{
			"global.imageRegistry=registry.example:5000", "global.imageTag=v0.3.0", "global.apiserver.insecure=true",
			"scheduler.extraArgs[0]=--parallelism=8", "node-agent.extraArgs[0]=--node-name=$(NODE_NAME)",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := chartcheck.Decode(chartcheck.Scheme(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := chartcheck.Validate(objs); err != nil {
		t.Fatal(err)
	}
	if n := kinds(objs)["Secret"]; n != 0 {
		t.Errorf("%d Secrets rendered for a plaintext apiserver", n)
	}
	for _, o := range objs {
		var spec *corev1.PodSpec
		switch w := o.Object.(type) {
		case *appsv1.Deployment:
			spec = &w.Spec.Template.Spec
		case *appsv1.StatefulSet:
			spec = &w.Spec.Template.Spec
		case *appsv1.DaemonSet:
			spec = &w.Spec.Template.Spec
		default:
			continue
		}
		name := o.Meta.GetLabels()["app.kubernetes.io/name"]
		if img := spec.Containers[0].Image; img != "registry.example:5000/bosun/"+name+":v0.3.0" {
			t.Errorf("%s: image %s", o, img)
		}
		a := args(spec)
		if !slices.Contains(a, "--insecure") || slices.ContainsFunc(a, prefix("--apiserver-ca-file")) || slices.ContainsFunc(a, prefix("--tls-cert-file")) {
			t.Errorf("%s: args %v, want --insecure and no certificates", o, a)
		}
		switch name {
		case "scheduler":
			if a[len(a)-1] != "--parallelism=8" {
				t.Errorf("scheduler args %v: extra argument not last", a)
			}
		case "node-agent":
			if a[len(a)-1] != "--node-name=$(NODE_NAME)" {
				t.Errorf("node-agent args %v: extra argument not last", a)
			}
		}
	}
}

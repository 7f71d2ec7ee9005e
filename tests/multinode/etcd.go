package multinode

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"bosun.dev/tests/conformance/harness"
)

// etcdPackage is the etcd server the apiserver's module uses (one version
// across the workspace): `go build` of it is the etcd binary.
const etcdPackage = "go.etcd.io/etcd/server/v3"

// EtcdMember is one member of the cluster's etcd, a process of its own on
// loopback, so that a test can kill it.
type EtcdMember struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	bin       string
	args      []string
	proc      *Process
	procs     []*Process
}

// startEtcd starts an etcd cluster of members members (data in the
// cluster's directory) and waits until it has a leader. The apiserver is
// given the members' client URLs, so that tests can read etcd's history
// and kill members.
func (c *Cluster) startEtcd(t *testing.T, members int) {
	t.Helper()
	bin := harness.Build(t, etcdPackage)
	token := "bosun-mn-" + randomHex(4)
	var initial []string
	for i := 0; i < members; i++ {
		m := &EtcdMember{
			Name:      fmt.Sprintf("etcd-%d", i+1),
			ClientURL: "http://" + harness.FreePort(t),
			PeerURL:   "http://" + harness.FreePort(t),
			DataDir:   filepath.Join(c.dir, fmt.Sprintf("etcd-%d", i+1)),
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Etcd = append(c.Etcd, m)
	}
	for _, m := range c.Etcd {
		m.args = []string{"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// Fast elections, so that losing the leader costs under a second.
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--log-level", "error", "--unsafe-no-fsync"}
		m.bin = bin
		m.Start(t)
	}
	t.Cleanup(func() {
		for _, m := range c.Etcd {
			for _, p := range m.procs {
				p.Stop()
				p.logOnFailure(t)
			}
		}
	})
	cli := c.EtcdClient(t)
	harness.Eventually(t, 30*time.Second, "etcd cluster healthy", func() error {
		for _, m := range c.Etcd {
			if m.proc.Exited() {
				t.Fatalf("etcd member %s exited:\n%s", m.Name, m.proc.Output())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Get(ctx, "health")
		return err
	})
}

// Start (re)starts the member with its flags and data directory.
func (m *EtcdMember) Start(t *testing.T) {
	t.Helper()
	m.proc = launch(t, "etcd "+m.Name, exec.Command(m.bin, m.args...))
	m.procs = append(m.procs, m.proc)
}

// Kill sends SIGKILL to the member and waits for it to exit.
func (m *EtcdMember) Kill() { m.proc.Kill() }

// EtcdEndpoints are the client URLs of the cluster's etcd members.
func (c *Cluster) EtcdEndpoints() []string {
	var out []string
	for _, m := range c.Etcd {
		out = append(out, m.ClientURL)
	}
	return out
}

// EtcdClient is a client of the cluster's etcd, closed when the test ends.
func (c *Cluster) EtcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.EtcdEndpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

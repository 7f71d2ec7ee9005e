package multinode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/netns"
	cnins "github.com/containernetworking/plugins/pkg/ns"
	clientv3 "go.etcd.io/etcd/client/v3"

	appsv1 "bosun.dev/gen/bosun/apps/v1"
	corev1 "bosun.dev/gen/bosun/core/v1"
	metav1 "bosun.dev/gen/bosun/meta/v1"
	"bosun.dev/pkg/client"
	"bosun.dev/tests/conformance/harness"
)

// deployWeb creates the web Deployment (label app=web, the pod image
// serving HTTP on 8080) with n replicas, removes it when the test ends
// (before the cluster stops) and waits until its n pods are Running.
func deployWeb(t *testing.T, c *Cluster, n int32) []*corev1.Pod {
	t.Helper()
	grace := int64(1)
	if _, err := client.For[*appsv1.Deployment](c.Conn).Create(context.Background(), &appsv1.Deployment{
		Metadata: &metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: &appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: &corev1.PodTemplateSpec{
				Metadata: &metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: &corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
					Containers: []*corev1.Container{{Name: "app", Image: c.Image, Args: []string{"serve", "8080"}}}},
			},
		},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDeployment(t, c) })
	return waitWebRunning(t, c, int(n), 120*time.Second)
}

// waitWebRunning waits until the web Deployment has exactly n pods, all
// Running and none deleting, and returns them.
func waitWebRunning(t *testing.T, c *Cluster, n int, timeout time.Duration) []*corev1.Pod {
	t.Helper()
	var out []*corev1.Pod
	harness.Eventually(t, timeout, fmt.Sprintf("Deployment web: %d pods Running", n), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pods, err := deploymentPods(ctx, c)
		if err != nil {
			return err
		}
		total := 0
		for _, k := range runningOn(pods) {
			total += k
		}
		if len(pods) != n || total != n {
			return fmt.Errorf("%d pods, %d Running: %s", len(pods), total, describePods(pods))
		}
		out = pods
		return nil
	})
	return out
}

// nodeOf finds the cluster's node by name.
func (c *Cluster) nodeOf(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// checkPodNetwork proves the cluster's network: the test process gets the
// hello of every pod at its IP, and a pod on one node reaches a pod on
// another (dialled from inside the first pod's network namespace).
func checkPodNetwork(t *testing.T, c *Cluster, pods []*corev1.Pod) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, p := range pods {
		// Running is not listening yet: the app may take a moment to bind.
		ip := p.GetStatus().GetPodIp()
		harness.Eventually(t, 30*time.Second, fmt.Sprintf("host -> pod %s (%s on %s)", p.GetMetadata().GetName(), ip, p.GetSpec().GetNodeName()), func() error {
			resp, err := hc.Get("http://" + net.JoinHostPort(ip, "8080") + "/")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), "hello from ") {
				t.Fatalf("pod %s answered %q", p.GetMetadata().GetName(), body)
			}
			return nil
		})
	}
	for _, a := range pods {
		for _, b := range pods {
			if a.GetSpec().GetNodeName() == b.GetSpec().GetNodeName() {
				continue
			}
			node := c.nodeOf(a.GetSpec().GetNodeName())
			nsPaths := node.NetNS()
			if len(nsPaths) == 0 {
				t.Fatalf("no pod network namespace on %s", node.Name)
			}
			// Any pod network namespace of node a's will do: each holds a
			// pod of the node.
			path := node.RootDir + "/netns/" + nsPaths[0]
			target := net.JoinHostPort(b.GetStatus().GetPodIp(), "8080")
			err := netns.LoadNetNS(path).Do(func(cnins.NetNS) error {
				conn, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return err
				}
				return conn.Close()
			})
			if err != nil {
				t.Fatalf("pod on %s -> pod %s on %s: %v", node.Name, target, b.GetSpec().GetNodeName(), err)
			}
			t.Logf("pod network: host -> %d pods and pod on %s -> pod on %s answer", len(pods), node.Name, b.GetSpec().GetNodeName())
			return
		}
	}
}

// explainStuckPods logs, for pods whose deletion does not finish, what
// etcd holds for them and what the final delete a node-agent sends (grace
// 0, UID precondition) answers now.
func explainStuckPods(t *testing.T, c *Cluster, pods []*corev1.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cli *clientv3.Client
	if len(c.Etcd) > 0 {
		cli = c.EtcdClient(t)
	}
	for _, p := range pods {
		md := p.GetMetadata()
		if cli != nil {
			resp, err := cli.Get(ctx, "/bosun/core/pods/"+md.GetNamespace()+"/"+md.GetName(), clientv3.WithKeysOnly())
			if err == nil {
				t.Logf("stuck pod %s (uid %s, resourceVersion %s, finalizers %v): %d keys in etcd", md.GetName(), md.GetUid(), md.GetResourceVersion(), md.GetFinalizers(), len(resp.Kvs))
			}
		}
		zero := int64(0)
		_, err := client.For[*corev1.Pod](c.Conn).Delete(ctx, md.GetNamespace(), md.GetName(),
			client.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{Uid: md.GetUid()}})
		t.Logf("stuck pod %s: the final delete (grace 0, uid precondition) answers %v", md.GetName(), err)
	}
}

// waitNodesClean waits up to 20 s until no node holds containers, network
// namespaces, IPAM leases or masquerade rules (the node-agents remove
// them), and fails the test naming what is left after what.
func (c *Cluster) waitNodesClean(t *testing.T, after string) {
	t.Helper()
	for _, nd := range c.Nodes {
		err := errors.New("")
		for deadline := time.Now().Add(20 * time.Second); err != nil && time.Now().Before(deadline); {
			err = nil
			if ns := nd.NetNS(); len(ns) > 0 {
				err = fmt.Errorf("network namespaces %v", ns)
			} else if rules := nd.NATRules(); len(rules) > 0 {
				err = fmt.Errorf("nat rules %v", rules)
			} else if leases := nd.Leases(); len(leases) > 0 {
				err = fmt.Errorf("IPAM leases %v", leases)
			} else if cs := nd.Containers(t); len(cs) > 0 {
				err = fmt.Errorf("containers %v", cs)
			}
			if err != nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if err != nil {
			t.Errorf("%s left after %s: %v", nd.Name, after, err)
		}
	}
}

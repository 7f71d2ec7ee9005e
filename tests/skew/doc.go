// Package skew is Bosun's version-skew test: it runs clusters in which one
// service comes from the previous release and every other one from the
// current tree, and checks that the life of a deployment still works end to
// end. docs/version-skew.md states the policy it enforces.
//
// The previous release (the baseline) is the newest tag matching v* that
// is reachable from HEAD and does not point at HEAD, else HEAD's first
// parent; BOSUN_SKEW_BASELINE names another revision. The baseline's tree
// is exported with git archive into a temporary directory (the repository's
// git state is not touched), and its binaries are built there with the same
// go toolchain in one go build, against the baseline's own go.work. The
// current binaries are built from the working tree the same way.
//
// TestVersionSkew then runs mixed clusters in sequence, each on a fresh
// apiserver data directory: one per service with that service from the
// baseline, and one with everything but the apiserver from the baseline
// (the cluster halfway through an upgrade). Each cluster has the apiserver
// (embedded etcd, plaintext, no authentication), the scheduler, the
// controller, the health-checker, the service-proxy and one simulated node:
// the node-agent's own pod workers on its in-memory runtime, from
// tools/cmd/nodesim. The real node-agent needs containerd and CNI, so the
// node-agent is taken from the baseline in this form. In each cluster the
// bosun CLI of the current tree applies a Deployment and a Service, and the
// test checks that the pods are scheduled and Running, the Endpoints list
// them, an ADS stream on the service-proxy is sent the Cluster and its
// ClusterLoadAssignment with the pods' addresses, deletion removes all of
// it, and a node that stops heartbeating is marked unreachable.
//
//	cd tests && go test -count=1 -v ./skew/
//	BOSUN_SKEW_BASELINE=v0.3.0 go test -count=1 -v ./skew/
//
// A shallow clone has no previous revision to build: the test then skips
// and says so. It also skips in -short mode.
package skew

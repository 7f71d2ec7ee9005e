// Command controller runs Bosun's controllers: ReplicaSet, Deployment, DaemonSet, StatefulSet, Job, Endpoints, garbage collection, namespaces and node IPAM.
//
// This build connects to the apiserver, waits until it answers, and serves
// its own gRPC health (and, with --metrics-listen, metrics) until SIGINT or
// SIGTERM.
package main

import "bosun.dev/pkg/server"

func main() {
	server.Main("controller", "127.0.0.1:10252", nil, nil)
}

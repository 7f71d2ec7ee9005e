// Command health-checker watches node liveness, sets node conditions and taints, and evicts pods from lost nodes.
//
// This build connects to the apiserver, waits until it answers, and serves
// its own gRPC health (and, with --metrics-listen, metrics) until SIGINT or
// SIGTERM.
package main

import "bosun.dev/pkg/server"

func main() {
	server.Main("health-checker", "127.0.0.1:10253", nil, nil)
}

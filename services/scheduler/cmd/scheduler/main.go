// Command scheduler binds unscheduled pods to nodes through its plugin framework.
//
// This build connects to the apiserver, waits until it answers, and serves
// its own gRPC health (and, with --metrics-listen, metrics) until SIGINT or
// SIGTERM.
package main

import "bosun.dev/pkg/server"

func main() {
	server.Main("scheduler", "127.0.0.1:10251", nil, nil)
}

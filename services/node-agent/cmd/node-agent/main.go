// Command node-agent runs the pods bound to its node on containerd.
//
// This build connects to the apiserver, waits until it answers, and serves
// its own gRPC health (and, with --metrics-listen, metrics) until SIGINT or
// SIGTERM.
package main

import "bosun.dev/pkg/server"

func main() {
	server.Main("node-agent", "127.0.0.1:10250", nil, nil)
}

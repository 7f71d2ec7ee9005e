// Command service-proxy serves Services and Endpoints to Envoy and proxyless gRPC clients over xDS.
//
// This build connects to the apiserver, waits until it answers, and serves
// its own gRPC health (and, with --metrics-listen, metrics) until SIGINT or
// SIGTERM.
package main

import "bosun.dev/pkg/server"

func main() {
	server.Main("service-proxy", "127.0.0.1:18000", nil, nil)
}

// Package e2e runs Bosun's binaries the way users do: the real apiserver
// process on its embedded etcd, driven by the real bosun CLI, over TLS.
package e2e

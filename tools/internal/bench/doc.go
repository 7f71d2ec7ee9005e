// Package bench holds Bosun's benchmarks: each one starts what it measures
// (an embedded etcd, the real apiserver binary, ...), runs interleaved rounds
// against a baseline so that machine noise hits both sides alike, and returns
// a report for the terminal and a section of docs/benchmarks.md.
//
// Benchmarks are registered by name in Registry; the bench command runs all
// of them or the one named by -only. Files are named by what they measure
// (apiserver_create.go); the shared machinery lives in load.go (concurrent
// load generation), stats.go (medians and percentiles), markdown.go (the
// results file), machine.go (the description of the host), etcd.go and
// apiserver.go (the processes under test).
package bench

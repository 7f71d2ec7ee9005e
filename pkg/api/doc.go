// Package api describes Bosun's API kinds to generic code: which kinds exist,
// how manifests and the command line name them, which gRPC service stores each
// and its methods, and the Object interface every stored object satisfies.
//
// The registry is fixed at build time from the generated descriptors in gen/;
// nothing registers itself at run time.
package api

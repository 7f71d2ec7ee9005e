// Package client is Bosun's typed API client. Resource[T] offers Get, List,
// Create, Update, UpdateStatus, Delete and Watch for one kind over any gRPC
// connection; ForKind gives the same for a kind chosen at run time, as the CLI
// needs. Requests are built from the kind's method descriptors (see package
// api), so one implementation serves every kind and a new kind needs no code here.
package client

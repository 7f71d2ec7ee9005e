// Package apitest is an in-memory stand-in for the Bosun apiserver, for tests
// of clients, informers and leader election. NewServer starts a real gRPC
// server on 127.0.0.1 that serves the Pod and Lease services and the gRPC
// health service with the apiserver's semantics:
//
//   - resource_version is a server-wide revision counter, bumped by every write;
//   - Update with a stale resource_version fails with Aborted (a conflict);
//   - List returns every match in one page with the revision it is consistent at;
//   - Watch from a revision delivers every later change in order exactly once,
//     from a bounded history; a revision older than the history fails with
//     apierrors.Compacted.
//
// Hooks let a test break things: DropWatches ends every open watch stream,
// Compact forgets the history, SendBookmarks emits bookmark events and
// SetFault fails chosen requests.
//
// Field selectors are refused and pagination is not implemented (every list
// is one page); the real apiserver does both.
package apitest

// Package controller holds what every Bosun controller shares: the shared
// informers, work queues with metrics and their workers, expectations that
// keep a controller from acting twice on writes its cache has not yet seen,
// owner references, label selectors and pod readiness.
//
// A controller built on it follows client-go's pattern: informer handlers
// enqueue keys ("namespace/name"), never objects; workers start only after
// every cache it reads has synced; a worker reads the object from the cache
// by key and clones it before changing anything.
package controller

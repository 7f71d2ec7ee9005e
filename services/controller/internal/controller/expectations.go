package controller

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ExpectationsTimeout bounds how long a controller waits for the watch to
// show its own writes; after it, the controller trusts its cache again (a
// write that was lost will then be redone).
const ExpectationsTimeout = 5 * time.Minute

// Expectations remember, per controller key, the creations and deletions a
// controller has asked for and not yet seen in its cache. While any are
// pending the controller must not act on the cache's count, or a slow watch
// would make it create (or delete) the same pods twice.
//
// Creations are counted; deletions are tracked by the deleted object's key, so
// that seeing one pod first marked for deletion and then removed settles one
// expectation, not two.
type Expectations struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	byKey map[string]*expectation
}

type expectation struct {
	adds    int
	deletes map[string]struct{}
	since   time.Time
}

// NewExpectations returns empty expectations timed by c (the real clock when
// nil).
func NewExpectations(c clock.PassiveClock) *Expectations {
	if c == nil {
		c = clock.RealClock{}
	}
	return &Expectations{clock: c, byKey: map[string]*expectation{}}
}

// Satisfied reports whether every write expected for key has been observed,
// or the expectations have expired.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.deletes) == 0 {
		return true
	}
	if e.clock.Since(x.since) > ExpectationsTimeout {
		delete(e.byKey, key)
		return true
	}
	return false
}

// ExpectCreations records that n creations for key are on their way,
// replacing earlier expectations of key.
func (e *Expectations) ExpectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKey[key] = &expectation{adds: n, deletes: map[string]struct{}{}, since: e.clock.Now()}
}

// ExpectDeletions records that the objects with the given keys are being
// deleted for key, replacing earlier expectations of key.
func (e *Expectations) ExpectDeletions(key string, deleted []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{deletes: map[string]struct{}{}, since: e.clock.Now()}
	for _, d := range deleted {
		x.deletes[d] = struct{}{}
	}
	e.byKey[key] = x
}

// CreationObserved settles one creation for key: the cache showed it, or the
// create failed and will not show.
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// DeletionObserved settles the deletion of the object objKey for key.
func (e *Expectations) DeletionObserved(key, objKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		delete(x.deletes, objKey)
	}
}

// Forget drops key's expectations (its owner is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}

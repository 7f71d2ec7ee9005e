package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Compactor compacts etcd's history on an interval: at each tick it compacts
// up to the revision it saw at the previous tick, so that watchers always have
// at least one interval of history to resume from. Several apiservers may each
// run one; compacting an already compacted revision is harmless.
type Compactor struct {
	Client   *clientv3.Client
	Interval time.Duration
	// OnCompact is told each revision compacted to (the watch caches use it).
	OnCompact func(rev int64)
	Logger    *slog.Logger
}

// Run compacts every Interval until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	if c.Interval <= 0 {
		return
	}
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := CurrentRevision(ctx, c.Client)
		if err != nil {
			c.Logger.Warn("compaction: reading revision", "error", err)
			continue
		}
		if last > 0 {
			if err := c.Compact(ctx, last); err != nil {
				c.Logger.Warn("compaction failed", "revision", last, "error", err)
			}
		}
		last = cur
	}
}

// Compact compacts etcd's history up to rev and tells OnCompact.
func (c *Compactor) Compact(ctx context.Context, rev int64) error {
	_, err := c.Client.Compact(ctx, rev)
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return err
	}
	if c.OnCompact != nil {
		c.OnCompact(rev)
	}
	return nil
}

package cache

import (
	"slices"
	"time"
)

// Status sums up the store for status pages.
type Status struct {
	Objects    int
	Bytes      int64
	QuotaBytes int64 // 0: none
	InFlight   int   // upstream downloads in progress
	Pins       int   // pinned repository paths
}

// Status returns the store's current figures.
func (c *Cache) Status() Status {
	n, b := c.store.stats()
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Objects: n, Bytes: b, QuotaBytes: c.cfg.QuotaBytes, InFlight: len(c.inflight), Pins: len(c.pins)}
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string // sha256, lowercase hex
	Size     int64
	LastUsed time.Time
	// Repo and Path are where it was last served from or fetched for
	// ("" after a restart until it is used again).
	Repo, Path string
}

// Objects lists the stored objects, most recently used first.
func (c *Cache) Objects() []ObjectInfo {
	es := c.store.entries()
	out := make([]ObjectInfo, 0, len(es))
	for _, e := range slices.Backward(es) {
		out = append(out, ObjectInfo{Key: e.key, Size: e.size, LastUsed: e.lastUsed, Repo: e.repo, Path: e.path})
	}
	return out
}

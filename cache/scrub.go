package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/patchgate/patchgate/health"
)

// Run runs the scrubber until ctx is done: it re-hashes every stored object
// at ScrubBytesPerSecond, drops any whose bytes no longer match their name
// (metric, health problem, log), rests ScrubPause, and starts over. With no
// scrub rate it just waits for ctx. It returns nil when ctx is done.
func (c *Cache) Run(ctx context.Context) error {
	if c.cfg.ScrubBytesPerSecond <= 0 {
		<-ctx.Done()
		return nil
	}
	for {
		if _, _, err := c.Scrub(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("scrub pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(c.cfg.ScrubPause):
		}
	}
}

// Scrub makes one pass over the store, least recently used first, paced at
// ScrubBytesPerSecond (unpaced when 0). It returns how many objects it
// checked and dropped.
func (c *Cache) Scrub(ctx context.Context) (checked, dropped int, err error) {
	buf := make([]byte, 256<<10)
	for _, e := range c.store.entries() {
		ok, err := c.scrubOne(ctx, e.key, buf)
		if err != nil {
			if ctx.Err() != nil {
				return checked, dropped, ctx.Err()
			}
			if errors.Is(err, fs.ErrNotExist) {
				continue // evicted meanwhile
			}
			return checked, dropped, err
		}
		checked++
		if !ok {
			dropped++
			c.removeObject(e.key)
			c.met.scrubMismatch.Inc()
			c.integrity(IntegrityEvent{Kind: IntegrityScrubMismatch, Repo: e.repo, Path: e.path, Key: e.key,
				Detail: "stored bytes no longer match their sha256"})
			c.setProblem(health.Problem{Code: "cache-scrub-mismatch", Severity: health.Warning,
				Text: fmt.Sprintf("the scrubber found stored object %s damaged and dropped it; check the disk", e.key)})
			c.log.Warn("scrub: stored object damaged, dropped", "key", e.key, "repo", e.repo, "path", e.path)
		}
	}
	return checked, dropped, nil
}

func (c *Cache) scrubOne(ctx context.Context, key string, buf []byte) (bool, error) {
	f, err := os.Open(c.store.objectPath(key))
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	start := c.clock.Now()
	var done int64
	for {
		n, rerr := f.Read(buf)
		h.Write(buf[:n])
		done += int64(n)
		c.met.scrubbedBytes.Add(float64(n))
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return false, rerr
		}
		if rate := c.cfg.ScrubBytesPerSecond; rate > 0 {
			due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
			if wait := due.Sub(c.clock.Now()); wait > 0 {
				select {
				case <-ctx.Done():
					return false, ctx.Err()
				case <-c.clock.After(wait):
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)) == key, nil
}

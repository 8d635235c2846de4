package cache

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/health"
)

// problemTTL is how long a one-off event (a damaged object) stays reported.
const problemTTL = 24 * time.Hour

func (c *Cache) setProblem(p health.Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems[p.Code] = problemRecord{p: p, at: c.clock.Now()}
}

// Health returns the cache's current problems: damaged objects found by the
// scrubber or when served (for a day), and pinned objects over the quota.
func (c *Cache) Health() []health.Problem {
	now := c.clock.Now()
	_, total := c.store.stats()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []health.Problem
	for code, r := range c.problems {
		if now.Sub(r.at) > problemTTL {
			delete(c.problems, code)
			continue
		}
		out = append(out, r.p)
	}
	// Eviction never removes pinned objects: whatever stays over the quota
	// is held by active rollouts.
	if q := c.cfg.QuotaBytes; q > 0 && total > q {
		out = append(out, health.Problem{Code: "cache-over-quota", Severity: health.Warning,
			Text: fmt.Sprintf("the store holds %d bytes, over its quota of %d bytes, with objects that active rollouts pin", total, q)})
	}
	slices.SortFunc(out, func(a, b health.Problem) int { return strings.Compare(a.Code, b.Code) })
	return out
}

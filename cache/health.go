package cache

import (
	"slices"
	"strings"
	"time"
)

// Severity says how bad a Problem is.
type Severity string

// Severities of problems.
const (
	SeverityWarning Severity = "warning"
	SeverityError   Severity = "error"
)

// Problem is one health problem, as data for the status page and systemd.
type Problem struct {
	Code     string // stable, e.g. "cache-scrub-mismatch"
	Severity Severity
	Text     string
}

// problemTTL is how long a one-off event (a damaged object) stays reported.
const problemTTL = 24 * time.Hour

func (c *Cache) setProblem(p Problem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems[p.Code] = problemRecord{p: p, at: c.clock.Now()}
}

// Health returns the cache's current problems: damaged objects found by the
// scrubber or when served (for a day), and pinned objects over the quota.
func (c *Cache) Health() []Problem {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Problem
	for code, r := range c.problems {
		switch {
		case code == "cache-over-quota" && c.overPins == 0:
			delete(c.problems, code)
		case code != "cache-over-quota" && now.Sub(r.at) > problemTTL:
			delete(c.problems, code)
		default:
			out = append(out, r.p)
		}
	}
	slices.SortFunc(out, func(a, b Problem) int { return strings.Compare(a.Code, b.Code) })
	return out
}

package cache

import (
	"cmp"
	"slices"
)

// Pin is a pinned target (see Cache.Pin).
type Pin struct{ Repo, Path string }

// Pins lists the pinned targets, sorted; the appliance's backup names them in its
// manifest instead of archiving the objects.
func (c *Cache) Pins() []Pin {
	c.mu.Lock()
	out := make([]Pin, 0, len(c.pins))
	for k := range c.pins {
		out = append(out, Pin{k.repo, k.path})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Pin) int { return cmp.Or(cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Path, b.Path)) })
	return out
}

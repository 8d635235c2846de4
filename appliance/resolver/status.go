package resolver

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is the resolver's state as data: what the status page's "dns" panel shows.
type Status struct {
	Now          time.Time        `json:"now"`
	Listen       []string         `json:"listen"`
	Counts       DecisionCounts   `json:"counts"`
	CacheEntries int              `json:"cache_entries"`
	Upstreams    []UpstreamStatus `json:"upstreams"`
	Lists        []ListStatus     `json:"lists"`
	ListErrors   []string         `json:"list_errors,omitempty"`
	ListsLoaded  time.Time        `json:"lists_loaded"`
	TopBlocked   []TopBlocked     `json:"top_blocked"`
	Recent       []Entry          `json:"recent"`
}

// DecisionCounts are the queries answered since start, by decision.
type DecisionCounts struct {
	Allowed   uint64 `json:"allowed"`
	Rewritten uint64 `json:"rewritten"`
	Blocked   uint64 `json:"blocked"`
	Refused   uint64 `json:"refused"`
}

// Total is the sum of the counts.
func (c DecisionCounts) Total() uint64 { return c.Allowed + c.Rewritten + c.Blocked + c.Refused }

// ListStatus is one loaded list.
type ListStatus struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
}

// Status returns the counts, upstreams and lists, the top blocked names with the devices
// asking for them and the recent queries (at most top and recent of them), device names
// resolved through the AssetNamer. It is safe for concurrent use.
func (s *Server) Status(top, recent int) Status {
	p := s.policy.Load()
	d := Status{
		Now:          s.clock.Now(),
		Listen:       s.Addrs(),
		CacheEntries: s.cache.len(),
		Upstreams:    s.fwd.status(),
		ListsLoaded:  p.loaded,
		TopBlocked:   s.qlog.topBlocked(top, 5),
		Recent:       s.qlog.recent(recent),
	}
	if len(d.Listen) == 0 {
		d.Listen = s.cfg.Listen
	}
	d.Counts = DecisionCounts{s.counts[Allowed].Load(), s.counts[Rewritten].Load(), s.counts[Blocked].Load(), s.counts[Refused].Load()}
	for name, set := range p.lists {
		d.Lists = append(d.Lists, ListStatus{name, set.Len()})
	}
	slices.SortFunc(d.Lists, func(a, b ListStatus) int { return strings.Compare(a.Name, b.Name) })
	s.mu.Lock()
	for _, e := range s.listErrs {
		d.ListErrors = append(d.ListErrors, fmt.Sprintf("list %s: %v", e.list, e.err))
	}
	s.mu.Unlock()
	for i := range d.TopBlocked {
		for j := range d.TopBlocked[i].Devices {
			dv := &d.TopBlocked[i].Devices[j]
			dv.Asset = s.hooks.assetName(dv.Client)
		}
	}
	for i := range d.Recent {
		d.Recent[i].Asset = s.hooks.assetName(d.Recent[i].Client)
	}
	return d
}

// Recent returns up to n of the latest queries, newest first, with asset names.
func (s *Server) Recent(n int) []Entry {
	out := s.qlog.recent(n)
	for i := range out {
		out[i].Asset = s.hooks.assetName(out[i].Client)
	}
	return out
}

package gateway

import "time"

// Status is the gateway's state as data: what the status page's gateway panel shows.
type Status struct {
	Applied   bool            `json:"applied"`
	AppliedAt time.Time       `json:"applied_at"`
	Error     string          `json:"error,omitempty"`
	FailClose bool            `json:"fail_closed"` // the table stays when patchgate stops (not open_on_stop)
	Repaired  int             `json:"repaired"`    // times the table was found removed and re-applied
	Output    PathStatus      `json:"output"`      // the appliance's own traffic
	Segments  []SegmentStatus `json:"segments"`
	Denied    []deniedFlow    `json:"denied"` // latest logged denied flows, newest first
}

// PathStatus is one path's decisions and learned addresses.
type PathStatus struct {
	Allowed uint64 `json:"allowed"`
	Denied  uint64 `json:"denied"`
	V4      int    `json:"v4"`
	V6      int    `json:"v6"`
}

// SegmentStatus is a routed segment's line.
type SegmentStatus struct {
	Name   string `json:"name"`
	Device string `json:"device"`
	PathStatus
}

// Status returns the ruleset's state, each path's counters and learned addresses and the
// latest denied flows. It is safe for concurrent use.
func (g *Gateway) Status() Status {
	g.metrics.mu.Lock()
	st := g.metrics.stats
	g.metrics.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	d := Status{
		Applied:   g.applied,
		AppliedAt: g.appliedAt,
		FailClose: !g.policy.OpenOnStop,
		Repaired:  g.repaired,
		Denied:    g.recentFlows(),
	}
	if g.applyErr != nil {
		d.Error = g.applyErr.Error()
	}
	path := func(allowed, denied, seg string) PathStatus {
		return PathStatus{
			Allowed: st.counters[allowed].Packets,
			Denied:  st.counters[denied].Packets,
			V4:      st.sizes[learnedSet(seg, false)],
			V6:      st.sizes[learnedSet(seg, true)],
		}
	}
	d.Output = path(outputAllowed, outputDenied, "")
	for _, s := range g.policy.Segments {
		d.Segments = append(d.Segments, SegmentStatus{Name: s.Name, Device: s.Device, PathStatus: path(segAllowed(s.Name), segDenied(s.Name), s.Name)})
	}
	return d
}

package gateway

import (
	"context"
	"time"

	"github.com/patchgate/patchgate/appliance/web"
)

// PanelData is what the status page's gateway panel shows.
type PanelData struct {
	Applied   bool           `json:"applied"`
	AppliedAt time.Time      `json:"applied_at"`
	Error     string         `json:"error,omitempty"`
	FailClose bool           `json:"fail_closed"`
	Repaired  int            `json:"repaired"` // times the table was found removed and re-applied
	Output    PanelPath      `json:"output"`   // the appliance's own traffic
	Segments  []PanelSegment `json:"segments"`
	Denied    []deniedFlow   `json:"denied"` // latest logged denied flows, newest first
}

// PanelPath is one path's decisions and learned addresses.
type PanelPath struct {
	Allowed uint64 `json:"allowed"`
	Denied  uint64 `json:"denied"`
	V4      int    `json:"v4"`
	V6      int    `json:"v6"`
}

// PanelSegment is a routed segment's line.
type PanelSegment struct {
	Name   string `json:"name"`
	Device string `json:"device"`
	PanelPath
}

// Panel implements web.PanelSource.
func (g *Gateway) Panel(context.Context) web.Panel {
	g.metrics.mu.Lock()
	st := g.metrics.stats
	g.metrics.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	d := PanelData{
		Applied:   g.applied,
		AppliedAt: g.appliedAt,
		FailClose: g.policy.FailClosed,
		Repaired:  g.repaired,
		Denied:    g.recentFlows(),
	}
	if g.applyErr != nil {
		d.Error = g.applyErr.Error()
	}
	path := func(allowed, denied, seg string) PanelPath {
		return PanelPath{
			Allowed: st.counters[allowed].Packets,
			Denied:  st.counters[denied].Packets,
			V4:      st.sizes[learnedSet(seg, false)],
			V6:      st.sizes[learnedSet(seg, true)],
		}
	}
	d.Output = path(outputAllowed, outputDenied, "")
	for _, s := range g.policy.Segments {
		d.Segments = append(d.Segments, PanelSegment{Name: s.Name, Device: s.Device, PanelPath: path(segAllowed(s.Name), segDenied(s.Name), s.Name)})
	}
	return web.Panel{ID: "gateway", Title: "Gateway", Data: d}
}

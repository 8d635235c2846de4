package gateway

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// recentDenied is how many denied flows the status panel shows.
const recentDenied = 20

// deniedFlow is one logged denied flow, for the status panel.
type deniedFlow struct {
	Time    time.Time  `json:"time"`
	Segment string     `json:"segment"` // "" for the appliance's own traffic
	Device  string     `json:"device"`  // the inventory's name for Src; "" if unknown
	Src     netip.Addr `json:"src"`
	Dst     netip.Addr `json:"dst"`
	Proto   string     `json:"proto"`
	Port    uint16     `json:"port,omitempty"`
}

// startLog reads the NFLOG group in a goroutine until ctx is done. The kernel rule
// already bounds the rate per segment, so every packet read is logged.
func (g *Gateway) startLog(ctx context.Context, group uint16) {
	r, err := openNFLOG(group, g.netns)
	if err != nil {
		g.mu.Lock()
		g.logErr = err
		g.mu.Unlock()
		g.log.Warn("gateway: denied flows will be counted but not logged", "err", err)
		return
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		<-ctx.Done()
		r.close()
	}()
	go func() {
		defer g.wg.Done()
		for {
			es, err := r.receive()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if errors.Is(err, unix.ENOBUFS) {
					continue // the socket overflowed: some lines lost, the counters have them
				}
				g.mu.Lock()
				g.logErr = err
				g.mu.Unlock()
				g.log.Warn("gateway: reading denied flows stopped", "err", err)
				return
			}
			for _, e := range es {
				g.logDenied(e)
			}
		}
	}()
}

// logDenied writes one denied flow to the log and the panel's list.
func (g *Gateway) logDenied(e logEntry) {
	seg, ok := e.segment()
	if !ok {
		return // another rule's log in the same group
	}
	f := deniedFlow{Time: g.clock.Now(), Segment: seg, Src: e.Src, Dst: e.Dst, Proto: protoName(e.Proto), Port: e.DstPort}
	if seg != "" {
		f.Device = g.nameOf(e.Src)
	}
	attrs := []any{"dst", f.Dst, "proto", f.Proto}
	if f.Port != 0 {
		attrs = append(attrs, "port", f.Port)
	}
	if seg == "" {
		g.log.Info("gateway: denied the appliance's own connection", attrs...)
	} else {
		g.log.Info("gateway: denied", append([]any{"segment", seg, "device", f.Device, "src", f.Src}, attrs...)...)
	}
	g.metrics.logged.WithLabelValues(seg).Inc()
	g.mu.Lock()
	g.recent[g.nrecent%recentDenied] = f
	g.nrecent++
	g.mu.Unlock()
}

// recentFlows returns the latest denied flows, newest first. g.mu must be held.
func (g *Gateway) recentFlows() []deniedFlow {
	n := min(g.nrecent, recentDenied)
	out := make([]deniedFlow, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, g.recent[(g.nrecent-i)%recentDenied])
	}
	return out
}

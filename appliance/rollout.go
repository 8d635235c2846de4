package appliance

import (
	"context"
	"net/netip"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// buildRollout builds the rollout engine: rings, windows, releases and rollouts in the
// store, evaluated on the clock; the serving gate in front of the cache's targets (when
// rollout.gate is enforce) and the delivery count behind it; the agent API on the
// distribution listener, the admin API on the admin listener (actors from auth), the
// inventory as the engine's devices (and the engine as the inventory's firmware
// observer), and the status panel.
func (s *System) buildRollout(ctx context.Context) error {
	c := s.cfg.Rollout
	loc := c.Location()
	cfg := rollout.Config{
		Zone:               loc,
		Policy:             rollout.Policy{Critical: c.SLA.Critical.D(), High: c.SLA.High.D(), Medium: c.SLA.Medium.D(), Low: c.SLA.Low.D()},
		Approvals:          c.Approvals,
		EmergencyApprovals: c.EmergencyApprovals,
		MaxAttempts:        c.MaxAttempts,
		RetryBase:          c.RetryBackoff.D(),
		RetryMax:           c.RetryBackoffMax.D(),
		Tick:               c.Tick.D(),
		PollInterval:       c.PollInterval.D(),
		Recheck:            c.Recheck.D(),
		DownloadTimeout:    c.DownloadTimeout.D(),
		PrefetchLead:       c.Prefetch.Lead.D(),
		DefaultRing:        c.DefaultRing,
		Segment:            s.segmentOf,
	}
	if c.Prefetch.OffPeak != "" {
		cfg.OffPeak = &rollout.Window{Name: "off-peak", Cron: c.Prefetch.OffPeak, Duration: rollout.Duration(c.Prefetch.OffPeakDuration.D()), Zone: c.Zone}
	}
	for _, r := range c.Rings {
		cfg.SeedRings = append(cfg.SeedRings, rollout.Ring{Name: r.Name, Order: r.Order, Selector: rollout.Selector{
			Tags: r.Tags, DeviceTypes: r.DeviceTypes, Segments: r.Segments, Assets: r.Assets}})
	}
	for _, w := range c.Windows {
		cfg.SeedWindows = append(cfg.SeedWindows, rollout.Window{Name: w.Name, Cron: w.Cron, Duration: rollout.Duration(w.Duration.D()),
			Zone: c.Zone, Ring: w.Ring, Segment: w.Segment})
	}
	opts := rollout.Options{DB: s.db, Clock: s.clock, Log: s.log.With("svc", "rollout"), Registerer: s.registry}
	if s.audit != nil {
		opts.Events = rolloutAudit{s.audit} // audit.go
	}
	if s.updates != nil {
		opts.Cache = s.updates.cache
	}
	if s.assets != nil { // inventory_rollout.go
		opts.Assets, opts.Facts = inventoryAssets{s.assets}, inventoryAssets{s.assets}
	}
	e, err := rollout.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	s.rollout = e
	s.services = append(s.services, e)
	if s.assets != nil {
		s.assets.SetFirmwareObserver(e) // a scan reading a release's version completes agentless deployments
	}
	e.RegisterAgentAPI(s.dist.mux)
	actor := rollout.LoopbackActor
	if s.auth != nil {
		actor = auth.Actor // the approval pages get the engine in buildCompliance
	}
	rollout.NewAPI(e, actor).Register(s.admin.mux)
	if s.updates != nil && c.Gate == "enforce" {
		s.updates.handler.Gate = servingGate{e.Gate()} // distribution.go
	}
	s.AddPanel(rolloutPanel(e))
	return nil
}

// segmentOf names the configured segment whose client subnets hold addr.
func (s *System) segmentOf(addr netip.Addr) string {
	for _, seg := range s.cfg.Segments {
		for _, p := range seg.Clients {
			if p.Contains(addr) {
				return seg.Name
			}
		}
	}
	return ""
}

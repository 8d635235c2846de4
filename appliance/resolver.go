package appliance

import (
	"context"
	"net/netip"
	"path/filepath"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/resolver"
)

// buildResolver builds the allowlisting DNS server from the resolver section and the
// segments, binds its sockets (so that a port in use fails New), and adds it as a
// service with its "dns" status panel. Other subsystems hook in with
// s.resolver.SetAssetNamer (inventory), SetAnswerSink (gateway) and SetEventSink (audit).
// Lists reload on SIGHUP (the System's handler calls Reload), when a list file changes,
// and through s.resolver.Reload.
func (s *System) buildResolver(ctx context.Context) error {
	rc := s.cfg.Resolver
	if !rc.Enabled {
		return nil
	}
	baseDir := ""
	if s.opts.ConfigPath != "" {
		baseDir = filepath.Dir(s.opts.ConfigPath)
	}
	srv, err := resolver.New(resolverConfig(s.cfg), resolver.Options{
		Logger:     s.log.With("svc", "resolver"),
		Registerer: s.registry,
		Clock:      s.clock,
		BaseDir:    baseDir,
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	s.closers = append(s.closers, srv.Close)
	s.resolver = srv
	s.services = append(s.services, srv)
	s.AddReloader("resolver", reloadFunc(func(context.Context) error { return srv.Reload() }))
	s.AddPanel(dnsPanel(srv))
	return nil
}

// resolverConfig translates the resolver section: every segment becomes a client group,
// with its policy from resolver.segments (none: every name blocked) and, unless
// rewrite_to says otherwise, the segment's own addresses for rewritten names.
func resolverConfig(c *config.Config) resolver.Config {
	rc := c.Resolver
	out := resolver.Config{
		Listen:          rc.Listen,
		UpstreamTimeout: rc.UpstreamTimeout.D(),
		HealthInterval:  rc.HealthInterval.D(),
		BlockPublicDoH:  rc.BlockPublicDoH,
		ReloadInterval:  rc.ReloadInterval.D(),
		LocalTTL:        rc.LocalTTL.D(),
		Cache: resolver.CacheConfig{Size: rc.Cache.Size, MinTTL: rc.Cache.MinTTL.D(), MaxTTL: rc.Cache.MaxTTL.D(),
			NegativeTTL: rc.Cache.NegativeTTL.D(), Prefetch: rc.Cache.Prefetch, PrefetchMinHits: rc.Cache.PrefetchMinHits},
		Limits: resolver.Limits{MaxConcurrent: rc.Limits.MaxConcurrent, ClientRate: rc.Limits.ClientRate,
			ClientBurst: rc.Limits.ClientBurst, UDPBufferSize: rc.Limits.UDPBufferSize,
			TCPIdleTimeout: rc.Limits.TCPIdleTimeout.D(), TCPMaxQueries: rc.Limits.TCPMaxQueries,
			TCPMaxConnections: rc.Limits.TCPMaxConnections},
		QueryLog: resolver.QueryLogConfig{Ring: rc.QueryLog.Ring, Log: rc.QueryLog.Log, LogRate: rc.QueryLog.LogRate,
			EventWindow: rc.QueryLog.EventWindow.D()},
	}
	for _, u := range rc.Upstreams {
		out.Upstreams = append(out.Upstreams, resolver.Upstream{Address: u.Address, Protocol: u.Protocol,
			TLSServerName: u.TLSServerName, TLSCAFile: u.TLSCAFile})
	}
	for _, l := range rc.Lists {
		out.Lists = append(out.Lists, resolver.List{Name: l.Name, Files: l.Files, Names: l.Names})
	}
	for _, seg := range c.Segments {
		if !seg.Serves(config.ServiceDNS) {
			continue // its clients are in no group: REFUSED
		}
		g := resolver.Segment{Name: seg.Name}
		for _, p := range seg.Clients {
			g.Clients = append(g.Clients, p.Prefix)
		}
		for _, a := range seg.Addresses {
			g.RewriteTo = append(g.RewriteTo, a.Addr())
		}
		for _, pol := range rc.Segments {
			if pol.Segment != seg.Name {
				continue
			}
			g.Allow, g.Rewrite, g.Block = pol.Allow, pol.Rewrite, pol.Block
			if len(pol.RewriteTo) > 0 {
				g.RewriteTo = parseAddrs(pol.RewriteTo)
			}
			g.BlockedAnswer, _ = resolver.ParseBlockedAnswer(pol.BlockedAnswer)
			g.Sinkhole = parseAddrs(pol.Sinkhole)
			g.StrictCNAME = pol.CNAME == "strict"
			g.CNAMETargets = pol.CNAMETargets
		}
		out.Segments = append(out.Segments, g)
	}
	return out
}

// parseAddrs parses addresses Validate has checked.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

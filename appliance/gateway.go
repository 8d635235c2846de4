package appliance

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/gateway"
)

// buildGateway builds the nftables egress gateway when gateway.enabled: its policy from
// the gateway section, the segments and the resolver's upstreams. gateway.New fails
// with a message naming CAP_NET_ADMIN when the process may not program nftables, so a
// gateway that cannot enforce anything stops the start. The resolver feeds it the
// addresses of allowed answers (SetAnswerSink). The ruleset is applied when the
// service runs, re-applied when SIGHUP reloads the config (gatewayReload), and kept on
// stop (closed) unless gateway.open_on_stop.
func (s *System) buildGateway(context.Context) error {
	if !s.cfg.Gateway.Enabled {
		return nil
	}
	p, err := gateway.PolicyFrom(s.cfg.Gateway, gateway.Refs{Segments: s.segments, Upstreams: s.cfg.Resolver.Upstreams})
	if err != nil {
		return err
	}
	log := s.log.With("svc", "gateway")
	if s.cfg.Gateway.FailClosed != nil {
		log.Warn("gateway: fail_closed is obsolete and ignored: the table is kept on stop unless open_on_stop: true")
	}
	gw, err := gateway.New(p, gateway.Options{Logger: log, Registry: s.registry, Clock: s.clock})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, gw.Close)
	s.gateway = gw
	if s.resolver != nil {
		s.resolver.SetAnswerSink(gw)
	}
	s.services = append(s.services, gw)
	s.AddReloader("gateway", gatewayReload{gw: gw, configPath: s.opts.ConfigPath, log: log})
	s.AddPanel(gatewayPanel(gw))
	return nil
}

// gatewayReload is the gateway's Reloader: it reads the config file again and applies
// its gateway policy; a config with problems changes nothing.
type gatewayReload struct {
	gw         *gateway.Gateway
	configPath string
	log        *slog.Logger
}

func (g gatewayReload) Reload(context.Context) error {
	if g.configPath == "" {
		return nil
	}
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return fmt.Errorf("gateway: reload: the config has problems; the rules in force stay: %w", err)
	}
	if !cfg.Gateway.Enabled {
		g.log.Warn("gateway: reload: gateway.enabled is now false; restart patchgate to turn the gateway off (the rules in force stay)")
		return nil
	}
	p, err := gateway.PolicyFrom(cfg.Gateway, cfg.GatewayRefs())
	if err == nil {
		err = g.gw.Reconfigure(p)
	}
	if err != nil {
		return fmt.Errorf("gateway: reload: %w", err)
	}
	g.log.Info("gateway: reloaded", "file", g.configPath, "segments", len(p.Segments))
	return nil
}

package appliance

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/gateway"
)

// buildGateway builds the nftables egress gateway when gateway.enabled: its policy from
// the gateway section, the segments and the resolver's upstreams. gateway.New fails
// with a message naming CAP_NET_ADMIN when the process may not program nftables, so a
// gateway that cannot enforce anything stops the start. The resolver feeds it the
// addresses of allowed answers (SetAnswerSink). The ruleset is applied when the
// service runs, re-applied when SIGHUP reloads the config, and removed on stop unless
// gateway.fail_closed.
func (s *System) buildGateway(context.Context) error {
	if !s.cfg.Gateway.Enabled {
		return nil
	}
	p, err := gateway.PolicyFrom(s.cfg.Gateway, gateway.Refs{Segments: s.segments, Upstreams: s.cfg.Resolver.Upstreams})
	if err != nil {
		return err
	}
	log := s.log.With("svc", "gateway")
	gw, err := gateway.New(p, gateway.Options{Logger: log, Registry: s.registry, Clock: s.clock})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, gw.Close)
	s.gateway = gw
	if s.resolver != nil {
		s.resolver.SetAnswerSink(gw)
	}
	s.services = append(s.services, &gatewayService{Gateway: gw, configPath: s.opts.ConfigPath, log: log})
	s.AddPanel(gw)
	return nil
}

// gatewayService runs the gateway and re-applies its policy from the config file on
// SIGHUP (the resolver reloads its lists on the same signal).
type gatewayService struct {
	*gateway.Gateway
	configPath string
	log        *slog.Logger
}

func (g *gatewayService) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan error, 1)
	go func() { done <- g.Gateway.Run(ctx) }()
	for {
		select {
		case err := <-done:
			return err
		case <-hup:
			g.reload()
		}
	}
}

// reload reads the config file again and applies its gateway policy; a config with
// problems changes nothing.
func (g *gatewayService) reload() {
	if g.configPath == "" {
		return
	}
	cfg, err := config.Load(g.configPath)
	if err != nil {
		g.log.Error("gateway: reload: the config has problems; the rules in force stay", "file", g.configPath, "err", err)
		return
	}
	if !cfg.Gateway.Enabled {
		g.log.Warn("gateway: reload: gateway.enabled is now false; restart patchgate to turn the gateway off (the rules in force stay)")
		return
	}
	p, err := gateway.PolicyFrom(cfg.Gateway, cfg.GatewayRefs())
	if err == nil {
		err = g.Reconfigure(p)
	}
	if err != nil {
		g.log.Error("gateway: reload", "err", err)
		return
	}
	g.log.Info("gateway: reloaded", "file", g.configPath, "segments", len(p.Segments))
}

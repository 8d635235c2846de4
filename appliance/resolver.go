package appliance

import (
	"context"

	"github.com/patchgate/patchgate/appliance/resolver"
)

// buildResolver builds the allowlisting DNS server from the resolver section and the
// segment table, binds its sockets (so that a port in use fails New), and adds it as a
// service with its "dns" status panel. Other subsystems hook in with
// s.resolver.SetAssetNamer (inventory), SetAnswerSink (gateway) and SetEventSink (audit).
// Lists reload on SIGHUP (the System's handler calls Reload), when a list file changes,
// and through s.resolver.Reload.
func (s *System) buildResolver(ctx context.Context) error {
	rc := s.cfg.Resolver
	if !rc.Enabled {
		return nil
	}
	srv, err := resolver.New(rc.Config(s.segments), resolver.Options{
		Logger:     s.log.With("svc", "resolver"),
		Registerer: s.registry,
		Clock:      s.clock,
		BaseDir:    s.opts.configDir(),
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

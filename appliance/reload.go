package appliance

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Reloader is a service that takes up a changed config (or the files it names) when the
// appliance is told to reload (SIGHUP, `systemctl reload patchgate`). Reload returns an
// error when the change was not taken up; it does not log that error itself (the handler
// does, once). What was in force before stays in force on error.
type Reloader interface {
	Reload(ctx context.Context) error
}

// reloadFunc is a Reloader made of a function.
type reloadFunc func(context.Context) error

// Reload implements Reloader.
func (f reloadFunc) Reload(ctx context.Context) error { return f(ctx) }

type namedReloader struct {
	name string
	Reloader
}

// AddReloader has the SIGHUP handler call r, after those added before it. name is the
// service's name in the log and in the audit record of a failed reload.
func (s *System) AddReloader(name string, r Reloader) {
	s.reloaders = append(s.reloaders, namedReloader{name, r})
}

// notifyReload returns the channel SIGHUP arrives on and the function that stops it.
// Run calls it before any service starts, so a SIGHUP never finds the process without a
// handler (Go's default for it is to exit).
func notifyReload() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// handleReloads calls reload for each signal on hup until ctx is done.
func (s *System) handleReloads(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reload(ctx)
		}
	}
}

// reload calls every Reloader in order, logs each failure once, and records the reload
// (the config file's digests before and after, and the services that failed) in the
// audit trail.
func (s *System) reload(ctx context.Context) {
	s.log.Info("SIGHUP: reloading", "config", s.opts.ConfigPath, "services", len(s.reloaders))
	var failed []string
	for _, r := range s.reloaders {
		if err := r.Reload(ctx); err != nil {
			s.log.Error("reload failed; what was in force stays", "svc", r.name, "err", err)
			failed = append(failed, r.name)
		}
	}
	if s.configWatch != nil {
		s.configWatch.record(ctx, failed)
	}
}

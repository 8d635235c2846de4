package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/fleet"
	"github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/logring"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
)

// Options are the things main hands the System besides the config.
type Options struct {
	Build   Build
	Logger  *slog.Logger
	LogRing *logring.Handler // recent log lines for the status page; may be nil
	Clock   clock.Clock      // nil means the wall clock
	// ConfigPath is the file the config was loaded from, for reloads and messages.
	ConfigPath string
	// Notifier talks to systemd; nil means the real sd_notify socket (a no-op outside
	// systemd).
	Notifier Notifier
}

// configDir is the folder of ConfigPath, against which the config's relative file
// names are read; "" when there is no config file.
func (o Options) configDir() string {
	if o.ConfigPath == "" {
		return ""
	}
	return filepath.Dir(o.ConfigPath)
}

// System is the whole appliance: every service, built from one Config. Build it with
// New, run it with Run (once), and Close it after Run returns. Its methods are safe for
// concurrent use.
type System struct {
	cfg      *config.Config
	segments *segment.Table // the configured segments, built once; every subsystem looks clients up here
	opts     Options
	log      *slog.Logger
	clock    clock.Clock
	started  time.Time
	registry *prometheus.Registry
	db       *store.DB
	audit    *audit.Log
	auth     *auth.Authority
	resolver *resolver.Server // the allowlisting DNS server; nil when disabled
	agentTLS *agentTLS        // the agents' HTTPS listener (agenttls.go); nil when not configured
	gateway  *gateway.Gateway // the nftables egress policy; nil when disabled
	assets   *inventory.Inventory
	shaper   *cache.Shaper   // bandwidth budgets; the cache serves and fetches through it
	updates  *updateCache    // TUF mirrors, the verified cache and the endpoints' handler
	rollout  *rollout.Engine // rings, windows, releases, rollouts, the serving gate
	fleet    *fleet.Link     // the link to the parent appliance (fleet.go); nil without one
	site     *siteRepo       // the site repository approved candidate releases are signed into (publish.go); nil without sources

	notify   *notify.Notifier  // email and webhooks (notifications.go); nil when notifications are off
	advisory *advisory.Service // vulnerability intake and exposure (advisory.go)

	services []Service // in start order; stopped in reverse
	admin    *httpService
	dist     *httpService
	panels   []web.PanelSource
	closers  []func() error

	reloaders   []namedReloader // called in order on SIGHUP
	configWatch *configWatch    // records reloads in the audit trail

	mu      sync.Mutex
	isReady bool
}

// New builds the System from cfg: it checks the state directory, opens the database
// (applying migrations), binds the listeners and builds every service. Nothing runs until
// Run. On error everything already opened is closed again.
func New(ctx context.Context, cfg *config.Config, opts Options) (_ *System, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Notifier == nil {
		opts.Notifier = systemdNotifier{}
	}
	opts.Build.Go = runtime.Version()
	s := &System{
		cfg:      cfg,
		segments: cfg.SegmentTable(),
		opts:     opts,
		log:      opts.Logger,
		clock:    opts.Clock,
		started:  opts.Clock.Now(),
		registry: newRegistry(opts.Build),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// Each step adds its services, handlers and panels. Order matters: services start in
	// this order and stop in reverse, so the listeners come last and go first.
	steps := []struct {
		name  string
		build func(context.Context) error
	}{
		{"state", s.buildState},
		{"http", s.buildHTTP},
		{"audit", s.buildAudit},
		{"notify", s.buildNotify}, // notifications.go; before the services whose events it sends
		{"auth", s.buildAuth},
		{"shaper", s.buildShaper},
		{"fleet", s.buildFleet}, // fleet.go: the link to a parent appliance; before the mirrors that use it
		{"tuf/cache", s.buildDistribution},
		{"resolver", s.buildResolver},
		{"gateway", s.buildGateway},
		{"inventory", s.buildInventory},
		{"rollout", s.buildRollout},
		{"vendorhost read-back", s.linkVendorOutcomes}, // vendoroutcome.go; after inventory and rollout
		{"agent-tls", s.buildAgentTLS},                 // agenttls.go
		{"fleet children", s.buildFleetChildren},       // fleet_children.go; after rollout
		{"compliance", s.buildCompliance},
		{"selfupdate", s.buildSelfUpdate},
		{"supply", s.buildSupply},
		{"advisory", s.buildAdvisory}, // advisory.go; after inventory and rollout, whose data it matches
		{"backup", s.buildBackup},
		{"notices", s.buildNotices}, // notices.go: state notices (overdue, expiry, reviews); after what it reads
		{"wizard", s.buildWizard},   // wizard.go: the first-run wizard's pages and panel
		{"siem", s.buildSIEM},
		{"web", s.buildWeb},
	}
	for _, st := range steps {
		if err := st.build(ctx); err != nil {
			return nil, err
		}
	}
	s.services = append(s.services, s.dist, s.admin)
	if s.agentTLS != nil {
		s.services = append(s.services, s.agentTLS.svc)
	}
	s.registerServiceMetrics()
	return s, nil
}

// buildState makes sure the state directory is there and writable and opens the store.
func (s *System) buildState(ctx context.Context) error {
	dir := s.cfg.State.Dir
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state directory %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("state directory %s is not writable: %w", dir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		return err
	}
	s.db = db
	s.closers = append(s.closers, db.Close)
	return nil
}

// Registry is the System's Prometheus registry.
func (s *System) Registry() *prometheus.Registry { return s.registry }

// DB is the System's database.
func (s *System) DB() *store.DB { return s.db }

// AdminAddr and DistributionAddr return the bound listener addresses (useful with port 0).
func (s *System) AdminAddr() string        { return s.admin.Addr() }
func (s *System) DistributionAddr() string { return s.dist.Addr() }

// Ready reports whether every service is ready.
func (s *System) Ready() bool {
	for _, svc := range s.services {
		if !svc.Ready() {
			return false
		}
	}
	return true
}

// Run starts every service and blocks until ctx is cancelled (SIGTERM, SIGINT) or a
// service fails; then it stops the services in reverse order, giving them together at
// most shutdown.timeout. While it runs, SIGHUP reloads every Reloader (see reload). It
// returns the first service error, or an error naming the services that did not stop in
// time.
func (s *System) Run(ctx context.Context) error {
	hup, stopHUP := notifyReload()
	defer stopHUP()
	hupCtx, stopReloads := context.WithCancel(ctx)
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		s.handleReloads(hupCtx, hup)
	}()
	type result struct {
		name string
		err  error
	}
	failed := make(chan result, len(s.services))
	cancels := make([]context.CancelFunc, len(s.services))
	dones := make([]chan struct{}, len(s.services))
	for i, svc := range s.services {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i], dones[i] = cancel, make(chan struct{})
		go func() {
			defer close(dones[i])
			if err := svc.Run(sctx); err != nil && sctx.Err() == nil {
				failed <- result{svc.Name(), err}
			}
		}()
	}
	s.log.Info("starting", "services", len(s.services), "admin", s.AdminAddr(), "distribution", s.DistributionAddr())

	var runErr error
	s.supervise(ctx, func() bool {
		select {
		case r := <-failed:
			runErr = fmt.Errorf("%s: %w", r.name, r.err)
			return true
		default:
			return false
		}
	})

	stopReloads() // no reload while the services stop; SIGHUP is still caught until Run returns
	<-reloads
	s.opts.Notifier.Notify("STOPPING=1\nSTATUS=stopping")
	s.log.Info("stopping", "reason", stopReason(ctx, runErr))
	deadline := time.Now().Add(s.cfg.Shutdown.Timeout.D())
	var late []string
	for i := len(s.services) - 1; i >= 0; i-- {
		cancels[i]()
		select {
		case <-dones[i]:
		case <-time.After(time.Until(deadline)):
			late = append(late, s.services[i].Name())
		}
	}
	if len(late) > 0 {
		err := fmt.Errorf("shutdown: %s did not stop within %s", strings.Join(late, ", "), s.cfg.Shutdown.Timeout.D())
		return errors.Join(runErr, err)
	}
	return runErr
}

func stopReason(ctx context.Context, err error) string {
	if err != nil {
		return err.Error()
	}
	if c := context.Cause(ctx); c != nil {
		return c.Error()
	}
	return "stopped"
}

// supervise tells systemd READY=1 once every service is ready, keeps STATUS= current,
// feeds the watchdog at half its interval, and returns when ctx is done or stop says so.
func (s *System) supervise(ctx context.Context, stop func() bool) {
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	var watchdog <-chan time.Time
	if iv := s.opts.Notifier.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv / 2)
		defer t.Stop()
		watchdog = t.C
	}
	lastStatus := ""
	for {
		if stop() {
			return
		}
		ready := s.Ready()
		s.mu.Lock()
		first := ready && !s.isReady
		s.isReady = s.isReady || ready
		s.mu.Unlock()
		status := s.statusLine(ready)
		if first {
			s.opts.Notifier.Notify("READY=1\nSTATUS=" + status)
			s.log.Info("ready", "took", s.clock.Now().Sub(s.started).String())
			lastStatus = status
		} else if status != lastStatus {
			s.opts.Notifier.Notify("STATUS=" + status)
			lastStatus = status
		}
		select {
		case <-ctx.Done():
			return
		case <-watchdog:
			s.opts.Notifier.Notify("WATCHDOG=1")
		case <-poll.C:
		}
	}
}

// statusLine is the one-line summary systemd shows: readiness and the worst problem.
func (s *System) statusLine(ready bool) string {
	var notReady []string
	var all []health.Problem
	for _, svc := range s.services {
		if !svc.Ready() {
			notReady = append(notReady, svc.Name())
		}
		all = append(all, svc.Health()...)
	}
	line := "ready"
	if !ready {
		line = "starting: waiting for " + strings.Join(notReady, ", ")
	}
	if w, ok := health.Worst(all); ok && w.Severity > health.Info {
		line += fmt.Sprintf("; %d problem(s), worst: %s", len(all), w.Text)
	}
	return line
}

// Close releases what New opened. Call it after Run has returned (or instead of Run).
func (s *System) Close() error {
	var errs []error
	for _, c := range slices.Backward(s.closers) {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}

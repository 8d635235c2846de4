package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/passive"
)

// DiscoveryConfig says what discovery does.
type DiscoveryConfig struct {
	// Passive lists the interfaces to listen on; empty means no listening.
	Passive []passive.Config
	// Scan configures active scans; nil means none (not even on demand).
	Scan *active.Config
	// Schedule is a cron expression for scans in Location; empty means on demand only.
	Schedule string
	Location *time.Location
	// FlushEvery bounds how long observations wait before they are merged (default 1s).
	FlushEvery time.Duration
}

// DiscoveryStatus is what discovery is doing, for the status page and the API.
type DiscoveryStatus struct {
	Passive      []string        `json:"passive"` // interfaces listened on
	PassiveError string          `json:"passive_error,omitempty"`
	ScanEnabled  bool            `json:"scan_enabled"`
	Schedule     string          `json:"schedule,omitempty"`
	Running      bool            `json:"running"`
	Progress     active.Progress `json:"progress"`
	LastStart    time.Time       `json:"last_start,omitzero"`
	LastEnd      time.Time       `json:"last_end,omitzero"`
	LastSummary  active.Summary  `json:"last_summary"`
	LastError    string          `json:"last_error,omitempty"`
	NextScan     time.Time       `json:"next_scan,omitzero"`
	Observations int64           `json:"observations"`
}

// Discovery is the service that feeds the inventory: passive capture on the
// configured interfaces and active scans on a schedule and on demand (one at a time).
// Run it once; its goroutines end when Run returns. Other methods are safe for
// concurrent use.
type Discovery struct {
	inv      *Inventory
	cfg      DiscoveryConfig
	log      *slog.Logger
	clock    clock.Clock
	schedule cron.Schedule
	scanner  *active.Scanner
	pmet     *passive.Metrics
	trigger  chan struct{}
	ready    atomic.Bool
	obsCount atomic.Int64

	mu     sync.Mutex
	status DiscoveryStatus
}

// NewDiscovery builds the service. Metrics go on reg; the scanner skips assets the
// inventory tags fragile.
func NewDiscovery(inv *Inventory, cfg DiscoveryConfig, reg prometheus.Registerer, log *slog.Logger, clk clock.Clock) (*Discovery, error) {
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	d := &Discovery{inv: inv, cfg: cfg, log: log, clock: clk, trigger: make(chan struct{}, 1)}
	if len(cfg.Passive) > 0 {
		m, err := passive.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		d.pmet = m
		for _, p := range cfg.Passive {
			d.status.Passive = append(d.status.Passive, p.Interface)
		}
	}
	if cfg.Scan != nil {
		sc := *cfg.Scan
		prev := sc.Exclude
		sc.Exclude = func(a netip.Addr, m netscan.MAC) bool {
			return inv.Fragile(a, m) || (prev != nil && prev(a, m))
		}
		am, err := active.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if d.scanner, err = active.New(sc, am, log, clk.Now); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		d.status.ScanEnabled = true
		if cfg.Schedule != "" {
			s, err := cron.ParseStandard(cfg.Schedule)
			if err != nil {
				return nil, fmt.Errorf("discovery: schedule %q: %w", cfg.Schedule, err)
			}
			d.schedule = s
			d.status.Schedule = cfg.Schedule
		}
	}
	return d, nil
}

// Name is the service's name.
func (d *Discovery) Name() string { return "discovery" }

// Ready reports whether Run has started.
func (d *Discovery) Ready() bool { return d.ready.Load() }

// Health reports a capture that could not start and a failed last scan.
func (d *Discovery) Health() []health.Problem {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []health.Problem
	if d.status.PassiveError != "" {
		ps = append(ps, health.Problem{Code: "discovery-passive", Severity: health.Warning,
			Text: "passive discovery is not listening: " + d.status.PassiveError})
	}
	if d.status.LastError != "" {
		ps = append(ps, health.Problem{Code: "discovery-scan", Severity: health.Warning,
			Text: "the last scan failed: " + d.status.LastError})
	}
	return ps
}

// Status returns what discovery is doing.
func (d *Discovery) Status() DiscoveryStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status
	st.Passive = append([]string(nil), st.Passive...)
	st.Observations = d.obsCount.Load()
	return st
}

// ErrScanRunning is returned by ScanNow while a scan runs.
var ErrScanRunning = errors.New("a scan is already running")

// ScanNow asks for a scan at once. It fails if scans are not configured or one is
// running or already asked for.
func (d *Discovery) ScanNow() error {
	if d.scanner == nil {
		return errors.New("active scans are not configured")
	}
	d.mu.Lock()
	running := d.status.Running
	d.mu.Unlock()
	if running {
		return ErrScanRunning
	}
	select {
	case d.trigger <- struct{}{}:
		return nil
	default:
		return ErrScanRunning
	}
}

// Run captures and scans until ctx is done.
func (d *Discovery) Run(ctx context.Context) error {
	obs := make(chan netscan.Observation, 4096)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	emit := func(o netscan.Observation) {
		select {
		case obs <- o:
		case <-ctx.Done():
		}
	}
	var perr []error
	for _, pc := range d.cfg.Passive {
		c, err := passive.Open(pc, d.pmet, d.log, d.clock.Now)
		if err != nil {
			perr = append(perr, err)
			continue
		}
		wg.Go(func() {
			defer c.Close()
			if err := c.Run(ctx, emit); err != nil {
				d.log.Error("passive capture stopped", "iface", pc.Interface, "err", err)
				d.mu.Lock()
				d.status.PassiveError = err.Error()
				d.mu.Unlock()
			}
		})
	}
	if len(perr) > 0 {
		d.mu.Lock()
		d.status.PassiveError = errors.Join(perr...).Error()
		d.mu.Unlock()
		d.log.Warn("passive discovery could not listen", "err", errors.Join(perr...))
	}
	wg.Go(func() { d.merge(ctx, obs) })
	d.ready.Store(true)

	for {
		var next <-chan time.Time
		if d.schedule != nil {
			now := d.clock.Now()
			at := d.schedule.Next(now.In(d.cfg.Location))
			d.mu.Lock()
			d.status.NextScan = at
			d.mu.Unlock()
			next = d.clock.After(at.Sub(now))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
		case <-d.trigger:
		}
		d.scan(ctx, emit)
	}
}

// scan runs one active scan, its observations going the same way as captured ones.
func (d *Discovery) scan(ctx context.Context, emit func(netscan.Observation)) {
	d.mu.Lock()
	d.status.Running, d.status.LastStart, d.status.Progress = true, d.clock.Now(), active.Progress{}
	d.mu.Unlock()
	sum, err := d.scanner.Scan(ctx, emit, func(p active.Progress) {
		d.mu.Lock()
		d.status.Progress = p
		d.mu.Unlock()
	})
	d.mu.Lock()
	d.status.Running, d.status.LastEnd, d.status.LastSummary = false, d.clock.Now(), sum
	d.status.LastError = ""
	if err != nil && ctx.Err() == nil {
		d.status.LastError = err.Error()
	}
	d.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		d.log.Error("scan failed", "err", err)
		return
	}
	d.log.Info("scan done", "live", sum.Live, "excluded", sum.Excluded, "packets", sum.Packets, "took", sum.Duration.String())
}

// merge batches observations into the inventory.
func (d *Discovery) merge(ctx context.Context, in <-chan netscan.Observation) {
	var batch []netscan.Observation
	flush := func() {
		if len(batch) == 0 {
			return
		}
		// A merge must finish even as the service stops: the batch is already taken.
		if err := d.inv.Observe(context.WithoutCancel(ctx), batch); err != nil {
			d.log.Error("inventory merge failed", "observations", len(batch), "err", err)
		}
		d.obsCount.Add(int64(len(batch)))
		batch = batch[:0]
	}
	tick := d.clock.NewTicker(d.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case o := <-in:
					batch = append(batch, o)
				default:
					flush()
					return
				}
			}
		case o := <-in:
			batch = append(batch, o)
			if len(batch) >= 512 {
				flush()
			}
		case <-tick.C():
			flush()
		}
	}
}

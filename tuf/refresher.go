package tuf

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/metric"
)

// RefresherConfig configures a Refresher (tuf.site; see Site.RefresherConfig).
type RefresherConfig struct {
	// Name is the repository's name in metrics, logs and health.
	Name string
	// Dir is the Publisher's directory.
	Dir string
	// TimestampExpiry and SnapshotExpiry are the online roles' lifetimes.
	TimestampExpiry, SnapshotExpiry time.Duration
	// ResignEvery is the timestamp's age at which it is re-signed; the snapshot
	// is re-signed with it once past half its lifetime.
	ResignEvery time.Duration
	// WarnBefore is how long before a role expires health warns (for the
	// online roles less: (TimestampExpiry-ResignEvery)/2 and SnapshotExpiry/4
	// at most, as they are renewed well before).
	WarnBefore time.Duration
}

// A Refresher keeps the online roles (timestamp, snapshot) of a repository the
// appliance publishes fresh: it re-signs them on a schedule with the online keys in
// DIR/keys, well before they expire, and reports (health, metrics) every role
// nearing expiry. It never signs targets (a release is published with
// Publisher.Publish, then Changed is called) nor root (the offline ceremony).
// It is safe for concurrent use.
type Refresher struct {
	cfg   RefresherConfig
	p     *Publisher
	clock clock.Clock
	log   *slog.Logger

	resigns *prometheus.CounterVec
	changed chan struct{}

	mu        sync.Mutex
	roles     map[string]RoleExpiry
	lastErr   error
	lastCheck time.Time
}

// NewRefresher opens the repository in cfg.Dir with the online lifetimes of cfg and
// the clock of opts.
func NewRefresher(cfg RefresherConfig, opts Options) (*Refresher, error) {
	if cfg.ResignEvery <= 0 || cfg.TimestampExpiry <= 0 || cfg.SnapshotExpiry <= 0 {
		return nil, fmt.Errorf("tuf: refresher %s: resign_every, timestamp_expiry and snapshot_expiry must be positive", cfg.Name)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := OpenPublisher(cfg.Dir, PublisherOptions{Now: opts.Clock.Now, SnapshotExpires: cfg.SnapshotExpiry, TimestampExpires: cfg.TimestampExpiry})
	if err != nil {
		return nil, err
	}
	r := &Refresher{cfg: cfg, p: p, clock: opts.Clock, log: opts.Logger.With("repo", cfg.Name), changed: make(chan struct{}, 1)}
	s := metric.New(opts.Registerer, "tuf_site")
	s.ConstLabels = prometheus.Labels{"repo": cfg.Name}
	r.resigns = s.CounterVec("resigns_total", "Re-signs of the online roles by result (ok, error).", "result")
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		s.ConstLabels = prometheus.Labels{"repo": cfg.Name, "role": role}
		s.GaugeFunc("role_expiry_seconds", "Seconds until the published role expires (negative: expired).", func() float64 {
			return r.Remaining(role).Seconds()
		})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("tuf: refresher %s: %w", cfg.Name, err)
	}
	return r, nil
}

// Publisher is the repository's publisher (with the refresher's clock and lifetimes):
// publish an approved release with it, then call Changed.
func (r *Refresher) Publisher() *Publisher { return r.p }

// Changed tells the refresher the repository changed (a publish, a root import), so
// it looks again now rather than at its next tick.
func (r *Refresher) Changed() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Run re-signs on schedule until ctx is done: it wakes when the timestamp is
// ResignEvery old (after a failure, sooner), or when told of a change.
func (r *Refresher) Run(ctx context.Context) {
	for {
		wait, _ := r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(wait):
		case <-r.changed:
		}
	}
}

// Check looks once: it re-signs what is due and reads every role's expiry. It returns
// the re-sign's error (also kept for Health).
func (r *Refresher) Check(ctx context.Context) error {
	_, err := r.check(ctx)
	return err
}

// check re-signs the timestamp once it is ResignEvery old, and with it the snapshot
// once past half its lifetime; it returns the time until the next is due.
func (r *Refresher) check(ctx context.Context) (time.Duration, error) {
	now := r.clock.Now()
	retry := max(time.Minute, r.cfg.ResignEvery/12)
	roles, err := r.p.Expiries()
	if err == nil && r.resignDue(roles, now) <= 0 {
		var pub Published
		snapDue := roles[metadata.SNAPSHOT].Expires.Sub(now) < r.cfg.SnapshotExpiry/2
		pub, err = r.p.Resign(ctx, snapDue)
		if err == nil {
			r.resigns.WithLabelValues("ok").Inc()
			r.log.Info("online roles re-signed", "snapshot", pub.Snapshot, "timestamp", pub.Timestamp, "expires", pub.Expires)
		} else if ctx.Err() == nil {
			r.resigns.WithLabelValues("error").Inc()
			r.log.Error("re-sign failed", "err", err)
		}
		if fresh, rerr := r.p.Expiries(); rerr == nil {
			roles = fresh
		}
	}
	wait := retry
	if err == nil {
		wait = max(time.Second, r.resignDue(roles, now))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if roles != nil {
		r.roles = roles
	}
	r.lastErr, r.lastCheck = err, now
	return wait, err
}

// resignDue is the time until the timestamp is ResignEvery old (or the snapshot
// reaches half its lifetime).
func (r *Refresher) resignDue(roles map[string]RoleExpiry, now time.Time) time.Duration {
	ts := roles[metadata.TIMESTAMP].Expires.Sub(now) - (r.cfg.TimestampExpiry - r.cfg.ResignEvery)
	snap := roles[metadata.SNAPSHOT].Expires.Sub(now) - r.cfg.SnapshotExpiry/2
	return min(ts, snap)
}

// LastCheck is the clock's time at the end of the last Check (zero before the first).
func (r *Refresher) LastCheck() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastCheck
}

// Remaining is how long until the published role expires, as last read (0 when never
// read).
func (r *Refresher) Remaining(role string) time.Duration {
	r.mu.Lock()
	e, ok := r.roles[role]
	r.mu.Unlock()
	if !ok {
		return 0
	}
	return e.Expires.Sub(r.clock.Now())
}

// warnBefore is how long before role expires Health warns.
func (r *Refresher) warnBefore(role string) time.Duration {
	switch role {
	case metadata.TIMESTAMP: // re-signed with TimestampExpiry-ResignEvery left
		return min(r.cfg.WarnBefore, (r.cfg.TimestampExpiry-r.cfg.ResignEvery)/2)
	case metadata.SNAPSHOT: // re-signed with about half its lifetime left
		return min(r.cfg.WarnBefore, r.cfg.SnapshotExpiry/4)
	}
	return r.cfg.WarnBefore
}

var roleAdvice = map[string]string{
	metadata.ROOT:      "renew it with the offline root ceremony (`patchgate tuf root export`, sign, import)",
	metadata.TARGETS:   "targets are signed only when a release is approved: approve one (or publish with `patchgate tuf publish`)",
	metadata.SNAPSHOT:  "the daemon re-signs it itself: see the re-sign error",
	metadata.TIMESTAMP: "the daemon re-signs it itself: see the re-sign error",
}

// Health reports a failed re-sign (tuf-site-resign-failed), a role expiring within
// its warning time (tuf-site-role-expiring, warning) and an expired role
// (tuf-site-role-expired, error: devices refuse the repository).
func (r *Refresher) Health() []health.Problem {
	r.mu.Lock()
	roles, lastErr := r.roles, r.lastErr
	r.mu.Unlock()
	now := r.clock.Now()
	var out []health.Problem
	if lastErr != nil {
		out = append(out, health.Problem{Code: "tuf-site-resign-failed", Severity: health.Error,
			Text: fmt.Sprintf("site repository %s: re-signing timestamp and snapshot failed: %v", r.cfg.Name, lastErr)})
	}
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		e, ok := roles[role]
		if !ok {
			continue
		}
		left := e.Expires.Sub(now)
		switch {
		case left <= 0:
			out = append(out, health.Problem{Code: "tuf-site-role-expired", Severity: health.Error,
				Text: fmt.Sprintf("site repository %s: %s version %d expired at %s; devices refuse the repository; %s",
					r.cfg.Name, role, e.Version, e.Expires.UTC().Format(time.RFC3339), roleAdvice[role])})
		case left < r.warnBefore(role):
			out = append(out, health.Problem{Code: "tuf-site-role-expiring", Severity: health.Warning,
				Text: fmt.Sprintf("site repository %s: %s version %d expires at %s (in %s); %s",
					r.cfg.Name, role, e.Version, e.Expires.UTC().Format(time.RFC3339), left.Round(time.Minute), roleAdvice[role])})
		}
	}
	return out
}

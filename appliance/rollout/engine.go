package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
)

// Assets is the inventory as the engine sees it. The inventory implements it; MemAssets
// is a simple one. Methods must be safe for concurrent use.
type Assets interface {
	// ByAddr returns the asset at a source address (false when none).
	ByAddr(ctx context.Context, addr netip.Addr) (Asset, bool, error)
	// ByAgent returns the asset an enrolled agent runs on (false when the inventory
	// does not know the agent; the engine then uses what the agent told it).
	ByAgent(ctx context.Context, agentID string) (Asset, bool, error)
	// List returns every asset.
	List(ctx context.Context) ([]Asset, error)
}

// FactSink receives what agents report at check-in (the inventory implements it).
type FactSink interface {
	AgentFacts(ctx context.Context, agentID string, addr netip.Addr, f agentapi.Facts) error
}

// Prestager is the cache as the engine sees it: *cache.Cache implements it.
type Prestager interface {
	// Prefetch makes sure the targets are stored (verified) in the cache.
	Prefetch(ctx context.Context, repo string, paths []string) error
	// Pin protects a target from eviction until as many Unpin calls.
	Pin(repo, path string)
	Unpin(repo, path string)
}

// Config tunes the engine. Zero fields take the defaults noted.
type Config struct {
	// Zone is the site's time zone: KEV due dates are whole days there (default UTC).
	Zone *time.Location
	// Policy is the SLA by severity (default DefaultPolicy).
	Policy Policy
	// Approvals is how many approvers a rollout needs (default 1); EmergencyApprovals
	// how many an emergency rollout needs (default and minimum 2).
	Approvals, EmergencyApprovals int
	// MaxAttempts per deployment (default 3); retries wait RetryBase × 2^(n-1), at most
	// RetryMax (defaults 10m and 6h).
	MaxAttempts         int
	RetryBase, RetryMax time.Duration
	// Tick is how often rollouts are evaluated (default 30s).
	Tick time.Duration
	// PollInterval is what agents are told to poll at (default 5m).
	PollInterval time.Duration
	// Recheck is the Retry-After given when no opening is known (a paused rollout, a
	// ring not released yet during its window); default 15m.
	Recheck time.Duration
	// DownloadTimeout: a download older than this no longer counts toward a stage's
	// concurrency limit (default 2h).
	DownloadTimeout time.Duration
	// OffPeak is when targets are pre-staged into the cache (nil: only PrefetchLead
	// before the first window). PrefetchLead (default 2h): prefetch anyway once the
	// first window opens within this.
	OffPeak      *Window
	PrefetchLead time.Duration
	// DefaultRing takes the devices no ring's selector matches ("": they are in no
	// ring and get nothing).
	DefaultRing string
	// SeedRings and SeedWindows are created when the store has no rings yet.
	SeedRings   []Ring
	SeedWindows []Window
	// Segment names the segment of an address ("" for none); used for agents the
	// inventory does not know.
	Segment func(netip.Addr) string
	// ApprovalPolicy is TwoPerson (default) or SelfWithReview (review.go); a
	// self-approval must be countersigned within ReviewWithin (default 7 days), an
	// emergency's within EmergencyReviewWithin (default 2 days).
	ApprovalPolicy                      ApprovalPolicy
	ReviewWithin, EmergencyReviewWithin time.Duration
}

func (c *Config) defaults() {
	if c.Zone == nil {
		c.Zone = time.UTC
	}
	if c.Policy == (Policy{}) {
		c.Policy = DefaultPolicy()
	}
	c.Approvals = max(c.Approvals, 1)
	c.EmergencyApprovals = max(c.EmergencyApprovals, 2)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	orDefault := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	orDefault(&c.RetryBase, 10*time.Minute)
	orDefault(&c.RetryMax, 6*time.Hour)
	orDefault(&c.Tick, 30*time.Second)
	orDefault(&c.PollInterval, 5*time.Minute)
	orDefault(&c.Recheck, 15*time.Minute)
	orDefault(&c.DownloadTimeout, 2*time.Hour)
	orDefault(&c.PrefetchLead, 2*time.Hour)
	if c.ApprovalPolicy == "" {
		c.ApprovalPolicy = TwoPerson
	}
	orDefault(&c.ReviewWithin, 7*24*time.Hour)
	orDefault(&c.EmergencyReviewWithin, 2*24*time.Hour)
	if c.Segment == nil {
		c.Segment = func(netip.Addr) string { return "" }
	}
}

// Options are the engine's collaborators. DB, Clock and Log are required.
type Options struct {
	DB         *store.DB
	Clock      clock.Clock
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Assets     Assets                // nil: only enrolled agents are devices
	Facts      FactSink              // nil: facts are kept by the engine only
	Events     EventSink             // nil: events are kept in the engine's history only
	Cache      Prestager             // nil: no pre-staging or pinning
}

// Engine runs rollouts: it keeps the model in the store, moves rollouts through their
// stages on a tick, answers the serving gate and the agents. It is safe for concurrent
// use; Run's goroutines stop when Run's context is done.
type Engine struct {
	cfg    Config
	db     *store.DB
	clock  clock.Clock
	log    *slog.Logger
	inv    sync.RWMutex // guards assets and facts
	assets Assets
	facts  FactSink
	sink   EventSink
	cache  Prestager
	met    *metrics

	mu   sync.Mutex // serialises every change to the model
	snap atomic.Pointer[snapshot]

	pinMu  sync.Mutex
	pinned map[[2]string]bool

	clientCA   atomic.Pointer[ClientCAConfig] // agenttls.go; nil: no client certificates
	ready      atomic.Bool
	onApproved atomic.Pointer[func(context.Context, *Rollout)]
	probMu     sync.Mutex
	problem    map[string]health.Problem // by code
}

// New opens the engine on db: applies its migrations and seeds rings and windows into
// an empty store.
func New(ctx context.Context, cfg Config, o Options) (*Engine, error) {
	if o.DB == nil || o.Clock == nil || o.Log == nil {
		return nil, errors.New("rollout: New needs DB, Clock and Log")
	}
	cfg.defaults()
	e := &Engine{
		cfg: cfg, db: o.DB, clock: o.Clock, log: o.Log, assets: o.Assets, facts: o.Facts, sink: o.Events, cache: o.Cache,
		pinned: map[[2]string]bool{}, problem: map[string]health.Problem{},
	}
	if e.assets == nil {
		e.assets = &MemAssets{}
	}
	if err := Migrate(ctx, o.DB); err != nil {
		return nil, err
	}
	if err := e.seed(ctx); err != nil {
		return nil, fmt.Errorf("rollout: seed: %w", err)
	}
	if err := e.recordPolicy(ctx); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer, e)
	if err != nil {
		return nil, err
	}
	e.met = m
	return e, nil
}

func (e *Engine) seed(ctx context.Context) error {
	rings, err := listRings(ctx, e.db)
	if err != nil || len(rings) > 0 {
		return err
	}
	now := e.clock.Now()
	return e.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range e.cfg.SeedRings {
			if err := r.Validate(); err != nil {
				return err
			}
			if err := putRing(ctx, tx, r, now); err != nil {
				return err
			}
		}
		for _, w := range e.cfg.SeedWindows {
			if _, err := w.Compile(); err != nil {
				return err
			}
			if err := insertWindow(ctx, tx, &w, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetAssets connects the inventory (built after the engine); nil goes back to an
// empty one, where only enrolled agents are devices.
func (e *Engine) SetAssets(a Assets) {
	if a == nil {
		a = &MemAssets{}
	}
	e.inv.Lock()
	e.assets = a
	e.inv.Unlock()
	e.invalidate()
}

// SetFacts connects the receiver of agents' check-in facts (nil: none).
func (e *Engine) SetFacts(f FactSink) {
	e.inv.Lock()
	e.facts = f
	e.inv.Unlock()
}

func (e *Engine) inventory() Assets {
	e.inv.RLock()
	defer e.inv.RUnlock()
	return e.assets
}

func (e *Engine) factSink() FactSink {
	e.inv.RLock()
	defer e.inv.RUnlock()
	return e.facts
}

// Name implements the appliance's Service.
func (e *Engine) Name() string { return "rollout" }

// Ready reports whether Run is evaluating rollouts.
func (e *Engine) Ready() bool { return e.ready.Load() }

// Health lists current problems: paused rollouts, overdue devices, failed pre-staging.
func (e *Engine) Health() []health.Problem {
	e.probMu.Lock()
	defer e.probMu.Unlock()
	out := make([]health.Problem, 0, len(e.problem))
	for _, p := range e.problem {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b health.Problem) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

func (e *Engine) setProblem(code string, p *health.Problem) {
	e.probMu.Lock()
	defer e.probMu.Unlock()
	if p == nil {
		delete(e.problem, code)
		return
	}
	p.Code = code
	e.problem[code] = *p
}

// Run evaluates rollouts every Tick and pre-stages targets until ctx is done.
func (e *Engine) Run(ctx context.Context) error {
	t := e.clock.NewTicker(e.cfg.Tick)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	prefetch := make(chan struct{}, 1)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-prefetch:
				e.Prestage(ctx)
			}
		}
	})
	e.ready.Store(true)
	defer e.ready.Store(false)
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("rollout: tick", "err", err)
		}
		select {
		case prefetch <- struct{}{}:
		default: // still busy with the last round
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// commit does fn and records ev atomically: through the sink's Apply when there is a
// sink (the audit record and the change commit together or not at all), else in a
// transaction of its own. ev is also stored in the engine's history.
func (e *Engine) commit(ctx context.Context, ev *Event, fn func(tx *sql.Tx) error) error {
	return e.commitMore(ctx, ev, func(tx *sql.Tx) ([]*Event, error) { return nil, fn(tx) })
}

// commitMore is commit whose fn may return further events: side effects of the action
// (deployments created or cancelled). They are stored in the history with ev and handed
// to the sink after the commit, as records of what followed from ev.
func (e *Engine) commitMore(ctx context.Context, ev *Event, fn func(tx *sql.Tx) ([]*Event, error)) error {
	if ev.Time.IsZero() {
		ev.Time = e.clock.Now()
	}
	var more []*Event
	run := func(tx *sql.Tx) error {
		var err error
		if more, err = fn(tx); err != nil {
			return err
		}
		for _, x := range append([]*Event{ev}, more...) {
			if err := insertEvent(ctx, tx, x); err != nil {
				return err
			}
		}
		return nil
	}
	if e.sink == nil {
		return e.db.Tx(ctx, run)
	}
	if err := e.sink.Apply(ctx, *ev, run); err != nil {
		return err
	}
	for _, m := range more {
		if err := e.sink.Apply(ctx, *m, nil); err != nil {
			e.log.Error("rollout: audit what followed from an action", "action", m.Action, "object", m.Object, "err", err)
		}
	}
	return nil
}

// nextID allocates the id of a new row of table (rollouts, releases, deployments,
// windows) so that its event can name it before the row exists. The caller holds e.mu,
// under which every such insert happens.
func (e *Engine) nextID(ctx context.Context, table string) (int64, error) {
	var id int64
	err := e.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM `+table).Scan(&id)
	return id, err
}

func rolloutEvent(r *Rollout, actor, action string, details map[string]string) *Event {
	return &Event{Actor: actor, Action: action, Object: "rollout/" + strconv.FormatInt(r.ID, 10), RolloutID: r.ID, Details: details}
}

// invalidate drops the gate's snapshot after a change to rings, windows, releases or
// rollouts.
func (e *Engine) invalidate() { e.snap.Store(nil) }

// ringOf is RingOf with the configured default ring for devices no selector matches.
func (e *Engine) ringOf(a Asset, rings []Ring) string {
	if r := RingOf(a, rings); r != "" {
		return r
	}
	if e.cfg.DefaultRing != "" && RingOf(Asset{Ring: e.cfg.DefaultRing}, rings) == e.cfg.DefaultRing {
		return e.cfg.DefaultRing
	}
	return ""
}

// snapshot is what the gate and the agent API read on every request: rings, compiled
// windows and the released rollouts by target.
type snapshot struct {
	rings    []Ring
	windows  []compiledWindow
	rollouts []*Rollout
	byTarget map[targetKey][]*Rollout
}

type compiledWindow struct {
	Window
	s *Schedule
}

type targetKey struct{ repo, path string }

// completedServeFor is how long after completion a rollout still serves latecomers.
const completedServeFor = 180 * 24 * time.Hour

func (e *Engine) snapshot(ctx context.Context) (*snapshot, error) {
	if s := e.snap.Load(); s != nil {
		return s, nil
	}
	s := &snapshot{byTarget: map[targetKey][]*Rollout{}}
	var err error
	if s.rings, err = listRings(ctx, e.db); err != nil {
		return nil, err
	}
	ws, err := listWindows(ctx, e.db)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		sch, err := w.Compile()
		if err != nil {
			e.log.Warn("rollout: window cannot be compiled; ignored", "window", w.ID, "err", err)
			continue
		}
		s.windows = append(s.windows, compiledWindow{w, sch})
	}
	rs, err := listRollouts(ctx, e.db, Approved, Scheduled, Running, Paused, Completed)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	for _, r := range rs {
		if r.State == Completed && now.Sub(r.StateAt) > completedServeFor {
			continue
		}
		s.rollouts = append(s.rollouts, r)
		for _, p := range r.Release.Targets {
			k := targetKey{r.Release.Repo, p}
			s.byTarget[k] = append(s.byTarget[k], r)
		}
	}
	e.snap.Store(s)
	return s, nil
}

// opening is the combined state of the windows that apply to a device of ring in
// segment; the second result is false when no window applies.
func (s *snapshot) opening(ring, segment string, now time.Time) (Opening, bool) {
	var ops []Opening
	for _, w := range s.windows {
		if w.Applies(ring, segment) {
			ops = append(ops, w.s.At(now))
		}
	}
	return combine(ops), len(ops) > 0
}

package rollout

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
)

// env is an engine on a real store in a temp dir, with a fake clock, in-memory assets,
// a recording event sink and a recording cache.
type env struct {
	e      *Engine
	clk    *clock.Fake
	assets *MemAssets
	sink   *recordingSink
	cache  *recordingCache
	db     *store.DB
	reg    *prometheus.Registry
}

// start is Monday 2026-03-02 12:00 UTC; the seeded window opens nightly at 22:00 UTC
// for 6 hours.
var start = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

var testRings = []Ring{
	{Name: "pilot", Order: 0, Selector: Selector{Tags: []string{"pilot"}}},
	{Name: "core", Order: 1, Selector: Selector{Segments: []string{"clinical"}}},
	{Name: "critical", Order: 2, Selector: Selector{DeviceTypes: []string{"robot"}}},
}

func newEnv(t *testing.T, mods ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	v := &env{clk: clock.NewFake(start), assets: &MemAssets{}, sink: &recordingSink{db: db}, cache: &recordingCache{pins: map[string]int{}}, db: db, reg: prometheus.NewRegistry()}
	cfg := Config{
		SeedRings:   testRings,
		SeedWindows: []Window{{Name: "nightly", Cron: "0 22 * * *", Duration: Duration(6 * time.Hour), Zone: "UTC"}},
		Segment: func(a netip.Addr) string {
			if netip.MustParsePrefix("10.20.0.0/24").Contains(a) {
				return "clinical"
			}
			return ""
		},
	}
	for _, m := range mods {
		m(&cfg)
	}
	var err error
	v.e, err = New(ctx, cfg, Options{DB: db, Clock: v.clk, Log: slog.New(slog.DiscardHandler), Registerer: v.reg,
		Assets: v.assets, Events: v.sink, Cache: v.cache})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// recordingSink is the audit log's stand-in (appliance's wiring test uses the real
// one): like audit.Log.Apply it runs fn in a transaction of the store and commits only
// if the record is kept. fail refuses before fn runs; failAfter lets fn run and then
// fails, as a crash between the change and the record would, so nothing commits.
type recordingSink struct {
	db        *store.DB
	mu        sync.Mutex
	evs       []Event
	fail      error
	failAfter error
}

func (s *recordingSink) Apply(ctx context.Context, ev Event, fn func(*sql.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return s.failAfter
	})
	if err != nil {
		return err
	}
	s.evs = append(s.evs, ev)
	return nil
}

func (s *recordingSink) actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.evs {
		out = append(out, ev.Action)
	}
	return out
}

// recordingCache stands in for *cache.Cache where the test is about what the engine
// asks of it (when to prefetch, what to pin); the cache's own tests cover doing it,
// and TestGateThroughCache uses the real one.
type recordingCache struct {
	mu        sync.Mutex
	prefetchd []string
	pins      map[string]int
	fail      error
}

func (c *recordingCache) Prefetch(_ context.Context, repo string, paths []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	for _, p := range paths {
		c.prefetchd = append(c.prefetchd, repo+"/"+p)
	}
	return nil
}

func (c *recordingCache) Pin(repo, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[repo+"/"+path]++
}

func (c *recordingCache) Unpin(repo, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[repo+"/"+path]--
	if c.pins[repo+"/"+path] == 0 {
		delete(c.pins, repo+"/"+path)
	}
}

func (c *recordingCache) pinned() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, n := range c.pins {
		if n > 0 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (v *env) release(t *testing.T, r Release) *Release {
	t.Helper()
	if r.Name == "" {
		r.Name = "fw 2.0"
	}
	if r.Repo == "" {
		r.Repo = "demo"
	}
	if r.Targets == nil {
		r.Targets = []string{"fw/fw-2.0.bin"}
	}
	if r.Severity == "" {
		r.Severity = High
	}
	rel, err := v.e.CreateRelease(context.Background(), "rita", r)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// pilotCore is a two-stage spec: pilot (all must succeed, pause at 50% failed once 2
// results are in, soak 24h) then core.
func pilotCore(relID int64) RolloutSpec {
	return RolloutSpec{Name: "fw 2.0", ReleaseID: relID, Risk: "low", TestEvidence: "lab", RollbackPlan: "reflash 1.9",
		Stages: []Stage{
			{Ring: "pilot", SuccessPercent: 100, ErrorPercent: 50, MinResults: 2, Soak: Duration(24 * time.Hour)},
			{Ring: "core", SuccessPercent: 100, ErrorPercent: 50, MinResults: 2},
		}}
}

// pilotCoreRollout adds the test devices and rel, and schedules a pilotCore rollout of
// rel (scheduled).
func (v *env) pilotCoreRollout(t *testing.T, rel Release) *Rollout {
	t.Helper()
	v.devices()
	return v.scheduled(t, pilotCore(v.release(t, rel).ID))
}

// scheduled creates, submits (rita), approves (anna) and schedules (now) a rollout.
func (v *env) scheduled(t *testing.T, spec RolloutSpec) *Rollout {
	t.Helper()
	ctx := context.Background()
	r, err := v.e.CreateRollout(ctx, "rita", spec)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(v.e.Submit(ctx, r.ID, "rita"))
	must(t)(v.e.Approve(ctx, r.ID, "anna", "looks fine"))
	if spec.Emergency {
		must(t)(v.e.Approve(ctx, r.ID, "bert", "agreed"))
	}
	return must(t)(v.e.Schedule(ctx, r.ID, "dora", time.Time{})).(*Rollout)
}

// must(t)(f()) fails the test if f returned an error, else returns f's value (for a
// type assertion at the call site).
func must(t *testing.T) func(any, error) any {
	return func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func must2(t *testing.T) func(any, any, error) (any, any) {
	return func(a, b any, err error) (any, any) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func (v *env) offers(t *testing.T, ag *Agent) []agentapi.Offer {
	t.Helper()
	_, _, offers, err := v.e.Offers(context.Background(), ag)
	if err != nil {
		t.Fatal(err)
	}
	return offers
}

func (v *env) tick(t *testing.T) {
	t.Helper()
	if err := v.e.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

func (v *env) rollout(t *testing.T, id int64) *Rollout {
	t.Helper()
	return must(t)(v.e.Rollout(context.Background(), id)).(*Rollout)
}

var deviceAddrs = map[string]string{"p1": "10.20.0.11", "p2": "10.20.0.12", "c1": "10.20.0.21", "c2": "10.20.0.22", "printer": "10.30.0.5"}

// devices: two pilot devices and two core devices, and a printer in no ring
// (agentless, by address).
func (v *env) devices() {
	v.assets.Put(Asset{ID: "p1", Name: "rx-ws-1", Tags: []string{"pilot"}, Segment: "clinical"}, v.addrOf("p1"))
	v.assets.Put(Asset{ID: "p2", Name: "rx-ws-2", Tags: []string{"pilot"}, Segment: "clinical"}, v.addrOf("p2"))
	v.assets.Put(Asset{ID: "c1", Name: "front-desk", Segment: "clinical"}, v.addrOf("c1"))
	v.assets.Put(Asset{ID: "c2", Name: "back-office", Segment: "clinical"}, v.addrOf("c2"))
	v.assets.Put(Asset{ID: "printer", Name: "label-printer", Segment: "devices"}, v.addrOf("printer"))
}

func (v *env) addrOf(id string) netip.Addr { return netip.MustParseAddr(deviceAddrs[id]) }

func (v *env) asset(t *testing.T, id string) Asset {
	t.Helper()
	as, _ := v.assets.List(context.Background())
	for _, a := range as {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no asset %s", id)
	return Asset{}
}

func (v *env) decide(addr string, path ...string) Decision {
	p := "fw/fw-2.0.bin"
	if len(path) > 0 {
		p = path[0]
	}
	return v.e.Gate().Decide(context.Background(), Request{Repo: "demo", Path: p, Addr: netip.MustParseAddr(addr)})
}

func (v *env) deployment(t *testing.T, rolloutID int64, asset string) *Deployment {
	t.Helper()
	ds := must(t)(v.e.Deployments(context.Background(), DeploymentFilter{RolloutID: rolloutID, AssetID: asset})).([]*Deployment)
	if len(ds) != 1 {
		t.Fatalf("%d deployments of rollout %d to %s, want 1", len(ds), rolloutID, asset)
	}
	return ds[0]
}

var errAuditDown = errors.New("audit disk full")

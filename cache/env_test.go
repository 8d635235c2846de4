package cache_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// env is a real TUF repository (tuftest), a Mirror of it named "demo", a
// Cache and the cache's Handler behind an httptest server.
type env struct {
	repo    *tuftest.Repo
	mirror  *tuf.Mirror
	cache   *cache.Cache
	handler *cache.Handler
	srv     *httptest.Server
	reg     *prometheus.Registry
	tufDir  string
	dir     string
	cfg     cache.Config
	clock   clock.Clock // nil: real
	// cacheClock, if set, is the cache's clock (the mirror keeps its own).
	cacheClock *clock.Fake

	mu        sync.Mutex
	integrity []cache.IntegrityEvent // what the cache reported through OnIntegrity
}

// integrityEvents returns the events reported so far.
func (e *env) integrityEvents() []cache.IntegrityEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]cache.IntegrityEvent(nil), e.integrity...)
}

type envOption func(*env)

func withConfig(f func(*cache.Config)) envOption { return func(e *env) { f(&e.cfg) } }

// withMirrorClock gives the mirror a clock (for expiry); the cache keeps
// the real one.
func withMirrorClock(c clock.Clock) envOption { return func(e *env) { e.clock = c } }

// withCacheClock gives the cache a fake clock (for its deadlines, watchdog
// and back-off); the mirror keeps the real one.
func withCacheClock(c *clock.Fake) envOption { return func(e *env) { e.cacheClock = c } }

func newEnv(t testing.TB, repo *tuftest.Repo, opts ...envOption) *env {
	t.Helper()
	e := &env{repo: repo, tufDir: t.TempDir(), dir: t.TempDir()}
	e.cfg = cache.Config{Dir: e.dir, RetryBackoff: time.Millisecond, StallTimeout: 5 * time.Second}
	for _, o := range opts {
		o(e)
	}
	e.start(t)
	return e
}

// start builds the mirror, cache and server over the env's directories (a
// second call is a restart).
func (e *env) start(t testing.TB) {
	t.Helper()
	e.startPinned(t, e.repo.Root())
}

// startPinned is start with a given pinned root.
func (e *env) startPinned(t testing.TB, root []byte) {
	t.Helper()
	e.reg = prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	m, err := tuf.NewMirror(tuf.MirrorConfig{
		Name: "demo", MetadataURL: e.repo.MetadataURL(), TargetsURL: e.repo.TargetsURL(),
		TrustedRoot: root, StateDir: e.tufDir, Retries: 1, RetryBackoff: time.Millisecond,
	}, tuf.Options{Logger: log, Registerer: e.reg, Clock: e.clock})
	if err != nil {
		t.Fatalf("NewMirror: %v", err)
	}
	opts := cache.Options{Logger: log, Registerer: e.reg,
		OnIntegrity: func(ev cache.IntegrityEvent) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.integrity = append(e.integrity, ev)
		}}
	if e.cacheClock != nil {
		opts.Clock = e.cacheClock
	}
	c, err := cache.New(e.cfg, []*tuf.Mirror{m}, opts)
	if err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	e.mirror, e.cache = m, c
	e.handler = &cache.Handler{Cache: c}
	if e.srv != nil {
		e.srv.Close()
	}
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(e.srv.Close)
}

func (e *env) refresh(t testing.TB) {
	t.Helper()
	if err := e.mirror.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

// get fetches a path of the cache server with optional header pairs.
func (e *env) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, e.srv.URL+path, header...)
}

func do(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}

// metricValue returns the sum of a metric family's values in reg; label pairs
// (name, value, ...) keep only the series that carry them.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// hasLabels reports whether got holds every (name, value) pair of want.
func hasLabels(got []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(got, func(lp *dto.LabelPair) bool { return lp.GetName() == want[i] && lp.GetValue() == want[i+1] }) {
			return false
		}
	}
	return true
}

var zeroTime time.Time

// waitFor polls cond (a state the code under test reaches on its own, not a
// timing assumption) for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

package cache_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/metric/metrictest"
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

// oneTargetEnv is an env whose repository lists one target, path with data, with the
// metadata verified.
func oneTargetEnv(t *testing.T, path string, data []byte) (*tuftest.Repo, *env) {
	t.Helper()
	repo := tuftest.New(t)
	repo.AddTarget(path, data)
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	return repo, e
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

// answerCase is one request asked of two servers that should answer alike.
type answerCase struct {
	name   string
	method string
	path   string
	header []string
	want   int
}

// sameAnswers asks each case of server a and server b (base URLs, named for the
// messages) and wants the status tc.want from both and the same headers (but Date) and
// body; before, when set, runs at the start of each case.
func sameAnswers(t *testing.T, tests []answerCase, aName, aURL, bName, bURL string, before func(t *testing.T)) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if before != nil {
				before(t)
			}
			aresp, abody := do(t, tc.method, aURL+tc.path, tc.header...)
			bresp, bbody := do(t, tc.method, bURL+tc.path, tc.header...)
			if aresp.StatusCode != tc.want || bresp.StatusCode != tc.want {
				t.Fatalf("status: %s %d, %s %d, want %d", aName, aresp.StatusCode, bName, bresp.StatusCode, tc.want)
			}
			aresp.Header.Del("Date")
			bresp.Header.Del("Date")
			if diff := cmp.Diff(aresp.Header, bresp.Header); diff != "" {
				t.Errorf("headers differ (-%s +%s):\n%s", aName, bName, diff)
			}
			if !bytes.Equal(abody, bbody) {
				t.Errorf("body: %s %d bytes, %s %d bytes", aName, len(abody), bName, len(bbody))
			}
		})
	}
}

// metricValue returns the sum of a metric family's values in reg.
var metricValue = metrictest.Sum

var zeroTime time.Time

// waitFor polls cond (a state the code under test reaches on its own, not a
// timing assumption).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	clocktest.WaitFor(t, "the condition", cond)
}

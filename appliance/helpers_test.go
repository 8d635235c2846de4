package appliance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/httpapi/httpapitest"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/conf"
)

// The helpers every test of the wiring shares: the dev config on loopback, one way to
// build and run a System that is stopped and closed when the test ends, waiting, and
// HTTP requests against its listeners.

// serveFile starts a vendor's web server, until the test ends, that answers path with
// body and anything else with 404.
func serveFile(t *testing.T, path string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testConfig is the dev config on ephemeral loopback ports with state in a temp dir.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load("../configs/dev.yaml")
	if err != nil {
		t.Fatalf("load dev config: %v", err)
	}
	cfg.State.Dir = t.TempDir()
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Distribution.Listen = "127.0.0.1:0"
	cfg.Resolver.Listen = []string{"127.0.0.1:0"}
	cfg.Shutdown.Timeout = conf.Duration(3 * time.Second)
	return cfg
}

// newSystem builds the System from cfg; it is closed when the test ends.
func newSystem(t *testing.T, cfg *config.Config, opts Options) *System {
	t.Helper()
	sys, err := New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { sys.Close() })
	return sys
}

// runSystem runs sys until cancel is called or the test ends; done carries Run's
// result. A test that reads done itself puts a value back for the cleanup.
func runSystem(t *testing.T, sys *System) (cancel context.CancelFunc, done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, done
}

// startSystem builds the System on testConfig with the extra services first (so the
// listeners still stop before them) and runs it.
func startSystem(t *testing.T, extra ...Service) (*System, context.CancelFunc, chan error) {
	t.Helper()
	return startSystemWith(t, testConfig(t), extra...)
}

// startSystemWith is startSystem on cfg.
func startSystemWith(t *testing.T, cfg *config.Config, extra ...Service) (*System, context.CancelFunc, chan error) {
	t.Helper()
	sys := newSystem(t, cfg, Options{Build: Build{Version: "test"}})
	sys.services = append(append([]Service{}, extra...), sys.services...)
	cancel, done := runSystem(t, sys)
	return sys, cancel, done
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitReady(t *testing.T, sys *System) {
	t.Helper()
	waitUntil(t, "the system to be ready", 5*time.Second, sys.Ready)
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// serviceOf finds the System's service of type T.
func serviceOf[T Service](sys *System) (T, bool) {
	for _, svc := range sys.services {
		if s, ok := svc.(T); ok {
			return s, true
		}
	}
	var zero T
	return zero, false
}

// panelData is the data of the status page's panel id.
func panelData[T any](t *testing.T, sys *System, id string) T {
	t.Helper()
	for _, p := range sys.Status(context.Background()).Panels {
		if p.ID == id {
			return p.Data.(T)
		}
	}
	t.Fatalf("no %s panel on the status page", id)
	var zero T
	return zero
}

// writeFile writes data to path, making its directory.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetch sends one request with the header pairs given (name, value, ...; a pair with
// an empty value is left out) and returns the status and the body.
var fetch = httpapitest.Fetch

// get fetches url and returns the response with its body read and closed.
func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// statusJSON is the status page as JSON.
func statusJSON(t *testing.T, sys *System) web.Status {
	t.Helper()
	code, body := fetch(t, "GET", "http://"+sys.AdminAddr()+"/", nil, "Accept", "application/json")
	var st web.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode JSON status (%d): %v", code, err)
	}
	return st
}

// writeListFiles writes content to every list file of cfg's resolver, in dir (where a
// config file in dir finds them), and returns their paths.
func writeListFiles(t *testing.T, cfg *config.Config, dir, content string) []string {
	t.Helper()
	var files []string
	for _, l := range cfg.Resolver.Lists {
		for _, f := range l.Files {
			files = append(files, filepath.Join(dir, f))
		}
	}
	if len(files) == 0 {
		t.Fatal("the dev config has no list files")
	}
	for _, f := range files {
		writeFile(t, f, []byte(content))
	}
	return files
}

// lintMetrics lints the System's registry, reporting every problem of a metric whose
// name starts with prefix, and returns those metrics' names.
func lintMetrics(t *testing.T, sys *System, prefix string) []string {
	t.Helper()
	mfs, err := sys.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, prefix) {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			names = append(names, mf.GetName())
		}
	}
	return names
}

package cache_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// Hostile upstreams (issue 14): every download ends within bounds, the waiting
// device gets a 504 or 502, and the failure is reported and counted once. The
// cache runs on a fake clock that pump moves whenever a timer is pending, so
// deadlines of minutes pass in milliseconds; the upstreams are real loopback
// servers.
func TestHostileUpstreams(t *testing.T) {
	data := bytes.Repeat([]byte("patch!"), 64<<10/6)
	tests := []struct {
		name     string
		cfg      cache.Config
		upstream func(w http.ResponseWriter, r *http.Request)
		status   int
		reason   string
		gets     int // upstream requests before the download is given up
	}{{
		// Attempt 1 verifies half the bytes; every later one starts again from
		// zero and gets no further, so none adds verified progress.
		name: "ignores Range and sends a short body",
		cfg:  cache.Config{MaxAttempts: 3, MinRate: -1},
		upstream: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK) // never 206, no Content-Length
			w.Write(data[:len(data)/2])
		},
		status: http.StatusBadGateway, reason: "short_body", gets: 4,
	}, {
		name: "drips a byte at a time",
		cfg:  cache.Config{MaxAttempts: 2, MinRate: 1 << 10, MinRateWindow: 10 * time.Second, StallTimeout: time.Hour},
		upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			for _, b := range data {
				w.Write([]byte{b})
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		},
		status: http.StatusGatewayTimeout, reason: "too_slow", gets: 2,
	}, {
		name:     "hangs after headers",
		cfg:      cache.Config{MaxAttempts: 2, StallTimeout: 30 * time.Second, MinRateWindow: time.Hour},
		upstream: hangAfterHeaders(len(data)),
		status:   http.StatusGatewayTimeout, reason: "stalled", gets: 2,
	}, {
		name:     "hangs past the download deadline",
		cfg:      cache.Config{DownloadDeadline: 2 * time.Minute, StallTimeout: time.Hour, MinRateWindow: time.Hour},
		upstream: hangAfterHeaders(len(data)),
		status:   http.StatusGatewayTimeout, reason: "deadline", gets: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := tuftest.New(t)
			repo.AddTarget("fw.bin", data)
			repo.Publish()
			clk := clock.NewFake(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
			e := newEnv(t, repo, withCacheClock(clk), withConfig(func(c *cache.Config) {
				dir := c.Dir
				*c = tc.cfg
				c.Dir = dir
			}))
			e.refresh(t)
			for _, p := range repo.TargetPaths("targets", "fw.bin") {
				repo.Handle(p, http.HandlerFunc(tc.upstream))
			}
			pump(t, clk, time.Second)

			status, body := getWithin(t, e.srv.URL+"/repos/demo/targets/fw.bin", 30*time.Second)
			if status != tc.status {
				t.Errorf("device got status %d (%s), want %d", status, body, tc.status)
			}
			if n := repo.TargetGets("fw.bin"); n != tc.gets {
				t.Errorf("upstream GETs = %d, want %d", n, tc.gets)
			}
			evs := e.integrityEvents()
			if len(evs) != 1 || evs[0].Kind != cache.IntegrityUpstreamFailed || evs[0].Reason != tc.reason ||
				evs[0].Repo != "demo" || evs[0].Path != "fw.bin" {
				t.Errorf("integrity events = %+v, want one upstream_failed (%s) for demo/fw.bin", evs, tc.reason)
			}
			if n := metricValue(t, e.reg, "patchgate_cache_upstream_failures_total", "reason", tc.reason); n != 1 {
				t.Errorf("patchgate_cache_upstream_failures_total{reason=%q} = %v, want 1", tc.reason, n)
			}
			if st := e.cache.Status(); st.Objects != 0 {
				t.Errorf("store holds %d objects, want 0", st.Objects)
			}
		})
	}
}

// hangAfterHeaders promises length bytes, sends the headers, then nothing.
func hangAfterHeaders(length int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(length))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// pump advances clk by step whenever a timer is pending, until the test
// ends, so the cache's deadlines, watchdog and back-off run in fake time.
func pump(t *testing.T, clk *clock.Fake, step time.Duration) {
	t.Helper()
	done, stopped := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			if clk.Waiters() > 0 {
				clk.Advance(step)
			}
		}
	}()
}

// getWithin GETs url and fails the test if no answer came within limit of
// real time (a request the cache never answers).
func getWithin(t *testing.T, url string, limit time.Duration) (int, []byte) {
	t.Helper()
	resp, err := (&http.Client{Timeout: limit}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v (no answer within %s)", url, err, limit)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

package cache_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

func TestCoalescing(t *testing.T) {
	const clients = 20
	data := bytes.Repeat([]byte{7}, 1<<20)
	repo, e := oneTargetEnv(t, "big.bin", data)

	// Hold the upstream answer until every client has asked.
	release := make(chan struct{})
	var arrived atomic.Int32
	for _, p := range repo.TargetPaths("targets", "big.bin") {
		repo.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
		}))
	}
	var wg sync.WaitGroup
	results := make([][]byte, clients)
	codes := make([]int, clients)
	for i := range clients {
		wg.Go(func() {
			arrived.Add(1)
			resp, body := e.get(t, "/repos/demo/targets/big.bin")
			codes[i], results[i] = resp.StatusCode, body
		})
	}
	// Wait until the 19 others have joined the download in flight.
	waitFor(t, func() bool {
		return metricValue(t, e.reg, "patchgate_cache_coalesced_requests_total") == clients-1
	})
	close(release)
	wg.Wait()
	for i := range clients {
		if codes[i] != 200 || !bytes.Equal(results[i], data) {
			t.Errorf("client %d: status %d, %d bytes", i, codes[i], len(results[i]))
		}
	}
	if n := repo.TargetGets("big.bin"); n != 1 {
		t.Errorf("upstream GETs = %d for %d concurrent cold requests, want 1", n, clients)
	}
}

func TestResume(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	repo, e := oneTargetEnv(t, "fw.bin", data)

	var calls atomic.Int32
	var ranges []string
	var mu sync.Mutex
	for _, p := range repo.TargetPaths("targets", "fw.bin") {
		repo.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ranges = append(ranges, r.Header.Get("Range"))
			mu.Unlock()
			if calls.Add(1) == 1 {
				// Send 300 KiB of the promised whole, then drop the connection.
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.WriteHeader(200)
				w.Write(data[:300<<10])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
		}))
	}
	resp, body := e.get(t, "/repos/demo/targets/fw.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=307200-" {
		t.Errorf("upstream Range headers = %q, want [\"\" \"bytes=307200-\"]", ranges)
	}
	if n := metricValue(t, e.reg, "patchgate_cache_upstream_resumes_total"); n != 1 {
		t.Errorf("patchgate_cache_upstream_resumes_total = %v, want 1", n)
	}
}

func TestResumeIgnoredRange(t *testing.T) {
	data := bytes.Repeat([]byte("xyz"), 100<<10)
	repo, e := oneTargetEnv(t, "fw.bin", data)
	var calls atomic.Int32
	for _, p := range repo.TargetPaths("targets", "fw.bin") {
		repo.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(200) // never honours Range
			if calls.Add(1) == 1 {
				w.Write(data[:1000])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
			w.Write(data)
		}))
	}
	resp, body := e.get(t, "/repos/demo/targets/fw.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("status %d, %d bytes, want the whole verified target", resp.StatusCode, len(body))
	}
}

func TestEvictionSparesPinned(t *testing.T) {
	repo := tuftest.New(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		repo.AddTarget(n+".bin", bytes.Repeat([]byte(n), 1000))
	}
	repo.Publish()
	e := newEnv(t, repo, withConfig(func(c *cache.Config) { c.QuotaBytes = 2500 }))
	e.refresh(t)
	e.cache.Pin("demo", "a.bin")
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c", "d"} { // a is least recently used
		if err := e.cache.Prefetch(ctx, "demo", []string{n + ".bin"}); err != nil {
			t.Fatalf("Prefetch(%s): %v", n, err)
		}
	}
	var got []string
	for _, o := range e.cache.Objects() {
		got = append(got, o.Path)
	}
	want := []string{"d.bin", "a.bin"} // b then c evicted, a pinned
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("stored objects = %v, want %v", got, want)
	}
	if n := metricValue(t, e.reg, "patchgate_cache_evictions_total"); n != 2 {
		t.Errorf("evictions = %v, want 2", n)
	}

	// Pinned objects alone over the quota: kept, and reported.
	e.cache.Pin("demo", "b.bin")
	e.cache.Pin("demo", "c.bin")
	if err := e.cache.Prefetch(ctx, "demo", []string{"b.bin", "c.bin"}); err != nil {
		t.Fatal(err)
	}
	if h := e.cache.Health(); len(h) != 1 || h[0].Code != "cache-over-quota" {
		t.Errorf("Health = %+v, want cache-over-quota", h)
	}
	e.cache.Unpin("demo", "b.bin")
	e.cache.Unpin("demo", "c.bin")
	if err := e.cache.Prefetch(ctx, "demo", []string{"d.bin"}); err != nil {
		t.Fatal(err)
	}
	if h := e.cache.Health(); len(h) != 0 {
		t.Errorf("Health after unpinning = %+v, want none", h)
	}
}

func TestScrubDropsDamaged(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("good.bin", []byte("good bytes"))
	repo.AddTarget("rot.bin", []byte("bytes that will rot"))
	repo.Publish()
	e := newEnv(t, repo, withConfig(func(c *cache.Config) { c.ScrubBytesPerSecond = 1 << 30 }))
	e.refresh(t)
	if err := e.cache.Prefetch(context.Background(), "demo", []string{"good.bin", "rot.bin"}); err != nil {
		t.Fatal(err)
	}
	key := sha256Hex([]byte("bytes that will rot"))
	obj := filepath.Join(e.dir, "objects", key[:2], key)
	if err := os.WriteFile(obj, []byte("bytes that will ROT"), 0o640); err != nil { // same size, bit rot
		t.Fatal(err)
	}
	checked, dropped, err := e.cache.Scrub(context.Background())
	if err != nil || checked != 2 || dropped != 1 {
		t.Fatalf("Scrub = %d checked, %d dropped, %v; want 2, 1, nil", checked, dropped, err)
	}
	if h := e.cache.Health(); len(h) != 1 || h[0].Code != "cache-scrub-mismatch" {
		t.Errorf("Health = %+v, want cache-scrub-mismatch", h)
	}
	if n := metricValue(t, e.reg, "patchgate_cache_scrub_mismatches_total"); n != 1 {
		t.Errorf("scrub mismatches metric = %v, want 1", n)
	}
	if evs := e.integrityEvents(); len(evs) != 1 || evs[0].Kind != cache.IntegrityScrubMismatch || evs[0].Key == "" {
		t.Errorf("integrity events = %+v, want one scrub_mismatch with the key", evs)
	}
	resp, body := e.get(t, "/repos/demo/targets/rot.bin")
	if resp.StatusCode != 200 || string(body) != "bytes that will rot" {
		t.Errorf("after scrub: status %d body %q, want the verified bytes fetched again", resp.StatusCode, body)
	}
	if n := repo.TargetGets("rot.bin"); n != 2 {
		t.Errorf("upstream GETs of the damaged target = %d, want 2", n)
	}
}

func TestWrongSizeOnDiskIsNotServed(t *testing.T) {
	_, e := oneTargetEnv(t, "t.bin", []byte("twelve bytes"))
	if err := e.cache.Prefetch(context.Background(), "demo", []string{"t.bin"}); err != nil {
		t.Fatal(err)
	}
	key := sha256Hex([]byte("twelve bytes"))
	if err := os.Truncate(filepath.Join(e.dir, "objects", key[:2], key), 5); err != nil {
		t.Fatal(err)
	}
	resp, body := e.get(t, "/repos/demo/targets/t.bin")
	if resp.StatusCode != 200 || string(body) != "twelve bytes" {
		t.Errorf("status %d body %q, want the verified bytes", resp.StatusCode, body)
	}
}

package curves

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/test/bench/benchstat"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// cacheServer is a mirror of repo and a cache behind the appliance's distribution
// serving path (Lean in front of net/http), on loopback.
func cacheServer(b *testing.B, repo *tuftest.Repo) (base string, c *cache.Cache) {
	b.Helper()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: repo.MetadataURL(), TargetsURL: repo.TargetsURL(),
		TrustedRoot: repo.Root(), StateDir: b.TempDir()}, tuf.Options{Logger: discard(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, err = cache.New(cache.Config{Dir: b.TempDir()}, []*tuf.Mirror{m}, cache.Options{Logger: discard(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	h := &cache.Handler{Cache: c}
	srv := httptest.NewUnstartedServer(h)
	lean := &cache.Lean{Handler: func() http.Handler { return h }, Small: h.Small}
	srv.Listener = lean.Listener(srv.Listener)
	srv.Start()
	b.Cleanup(srv.Close)
	return srv.URL + "/repos/demo/targets/", c
}

// latencies fetches paths (picked at random by each of conc clients) n times in all
// and returns each request's duration.
func latencies(b *testing.B, base string, pick func(r *rand.Rand) string, conc, n int) []time.Duration {
	cl := &http.Client{Transport: &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableCompression: true}}
	defer cl.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	per := max(1, n/conc)
	var failed error
	for i := range conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 3))
			ds := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				if err := get(cl, base+pick(r)); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				ds = append(ds, time.Since(t0))
			}
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	return all
}

// objectBytes is 1 KiB of content unique to i (tuftest.Generated holds 128 KiB per
// target, too much for 100k of them).
func objectBytes(i int) tuftest.Bytes {
	b := make([]byte, 1<<10)
	copy(b, fmt.Sprintf("object %d ", i))
	return b
}

// hashBins is how many hashed-bin roles the objects are spread over (by the first byte
// of the sha256 of their path), as a large repository does (TUF's hashed bin
// delegation, PEP 458): a flat targets.json grows by ~170 bytes a target and passes the
// 5 MB a mirror accepts for a role whose length the snapshot does not give at about
// 30,000 targets. 256 bins of 1M objects are ~700 KB each.
const hashBins = 256

// objectCounts are the sizes of the cache-objects curve: PG_CURVES_OBJECTS (a comma
// list, e.g. 100000,1000000) or the defaults.
func objectCounts(b *testing.B) []int {
	env := os.Getenv("PG_CURVES_OBJECTS")
	if env == "" {
		return sizes([]int{10000, 100000, 1000000}, []int{1000, 3000})
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("PG_CURVES_OBJECTS: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkCurveCacheObjects: hit latency (1 KiB objects, 8 clients) and the
// process's live heap against the number of objects stored (all fetched once first,
// so all are in the store's index; the 64 KiB-and-smaller ones are also candidates for
// the in-memory copies, which are bounded by size).
func BenchmarkCurveCacheObjects(b *testing.B) {
	once(b, "cache-objects", func(b *testing.B) []*Curve {
		var xs, p50, p99, heap, la []float64
		for _, n := range objectCounts(b) {
			h0 := heapMiB()
			repo := tuftest.New(b, tuftest.WithHashes("sha256"))
			for bin := range hashBins {
				prefix := fmt.Sprintf("%02x", bin)
				repo.DelegateRole("targets", metadata.DelegatedRole{Name: "bin-" + prefix, PathHashPrefixes: []string{prefix}})
			}
			for i := range n {
				path := fmt.Sprintf("o/%d", i)
				sum := sha256.Sum256([]byte(path))
				repo.AddTargetContent(fmt.Sprintf("bin-%02x", sum[0]), path, objectBytes(i), nil)
			}
			repo.Publish()
			hr := heapMiB()
			base, _ := cacheServer(b, repo)
			pick := func(r *rand.Rand) string { return fmt.Sprintf("o/%d", r.IntN(n)) }
			t0 := time.Now()
			var i int
			var mu sync.Mutex
			latencies(b, base, func(*rand.Rand) string { // every object once: the misses
				mu.Lock()
				defer mu.Unlock()
				i++
				return fmt.Sprintf("o/%d", (i-1)%n)
			}, 8, n)
			fill := time.Since(t0)
			h1 := heapMiB()
			writeHeapProfile(b, fmt.Sprintf("cache-objects-%d", n))
			l := loadAvg()
			ds := latencies(b, base, pick, 8, 20000)
			xs = append(xs, float64(n))
			p50 = append(p50, ms(benchstat.Percentile(ds, 0.5)))
			p99 = append(p99, ms(benchstat.Percentile(ds, 0.99)))
			heap = append(heap, h1-hr)
			la = append(la, l)
			b.Logf("objects %d: filled in %v, heap: test repository +%.1f MiB, mirror and cache +%.1f MiB, hit p50 %v p99 %v, load %.1f",
				n, fill, hr-h0, h1-hr, benchstat.Percentile(ds, 0.5), benchstat.Percentile(ds, 0.99), l)
		}
		note := loadNote(la)
		return []*Curve{
			{Name: "cache-objects-latency", Title: "Cache: 1 KiB hit latency vs objects stored (8 clients)", XLabel: "objects stored",
				YLabel: "ms", LogX: true, X: xs, Series: []Series{{"p50", p50}, {"p99", p99}}, Notes: []string{note}},
			{Name: "cache-objects-memory", Title: "Cache: live heap vs objects stored", XLabel: "objects stored",
				YLabel: "MiB (mirror and cache)", LogX: true, X: xs, Series: []Series{{"heap MiB", heap}}, Notes: []string{note}},
		}
	})
}

// BenchmarkCurveCacheConcurrency: latency of 1 MiB and 4 KiB hits and the live heap
// against the number of concurrent downloads (each a keep-alive client looping).
func BenchmarkCurveCacheConcurrency(b *testing.B) {
	once(b, "cache-concurrency", func(b *testing.B) []*Curve {
		repo := tuftest.New(b, tuftest.WithHashes("sha256"))
		repo.AddTargetContent("targets", "small", tuftest.NewGenerated(4<<10, 1), nil)
		repo.AddTargetContent("targets", "large", tuftest.NewGenerated(1<<20, 2), nil)
		repo.Publish()
		base, _ := cacheServer(b, repo)
		for range 2 {
			latencies(b, base, func(*rand.Rand) string { return "small" }, 1, 1)
			latencies(b, base, func(*rand.Rand) string { return "large" }, 1, 1)
		}
		var xs, sp50, sp99, lp50, lp99, heap, la []float64
		for _, conc := range sizes([]int{10, 100, 500, 1000, 2000, 5000}, []int{10, 100}) {
			l := loadAvg()
			var h float64
			var hmu sync.Mutex
			stopHeap := make(chan struct{})
			go func() { // the live heap in the middle of the run
				time.Sleep(300 * time.Millisecond)
				hmu.Lock()
				h = heapMiB()
				hmu.Unlock()
				close(stopHeap)
			}()
			large := latencies(b, base, func(*rand.Rand) string { return "large" }, conc, max(2*conc, 400))
			<-stopHeap
			small := latencies(b, base, func(*rand.Rand) string { return "small" }, conc, max(4*conc, 4000))
			xs = append(xs, float64(conc))
			sp50, sp99 = append(sp50, ms(benchstat.Percentile(small, 0.5))), append(sp99, ms(benchstat.Percentile(small, 0.99)))
			lp50, lp99 = append(lp50, ms(benchstat.Percentile(large, 0.5))), append(lp99, ms(benchstat.Percentile(large, 0.99)))
			hmu.Lock()
			heap = append(heap, h)
			hmu.Unlock()
			la = append(la, l)
			b.Logf("concurrency %d: 4 KiB p50 %v p99 %v, 1 MiB p50 %v p99 %v, heap %.1f MiB, load %.1f", conc,
				benchstat.Percentile(small, 0.5), benchstat.Percentile(small, 0.99), benchstat.Percentile(large, 0.5), benchstat.Percentile(large, 0.99), h, l)
		}
		note := loadNote(la)
		return []*Curve{
			{Name: "cache-concurrency-latency", Title: "Cache: hit latency vs concurrent downloads", XLabel: "concurrent downloads",
				YLabel: "ms", LogX: true, LogY: true, X: xs, Series: []Series{{"4 KiB p50", sp50}, {"4 KiB p99", sp99}, {"1 MiB p50", lp50}, {"1 MiB p99", lp99}},
				Notes: []string{note, "client and server in one process: latency includes the clients' own scheduling"}},
			{Name: "cache-concurrency-memory", Title: "Cache: live heap during 1 MiB downloads vs concurrency", XLabel: "concurrent downloads",
				YLabel: "MiB (server and clients)", LogX: true, X: xs, Series: []Series{{"heap MiB", heap}}, Notes: []string{note}},
		}
	})
}

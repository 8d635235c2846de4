package cache

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/patchgate/patchgate/tuf/tuftest"
)

// upstream is the TUF repository both servers cache from.
type upstream struct {
	repo *tuftest.Repo
}

var objects = []struct {
	name        string
	size        int64
	requests    int // per benchmark iteration and server
	concurrency int
	cycles      int // A B B A cycles per iteration (see BenchmarkCachedHit)
}{
	{"4KiB", 4 << 10, 20000, 32, 5},
	{"1MiB", 1 << 20, 2000, 16, 5},
	{"100MiB", 100 << 20, 40, 4, 1},
}

func newUpstream(b *testing.B) *upstream {
	u := &upstream{repo: tuftest.New(b, tuftest.WithHashes("sha256"))}
	for i, o := range objects {
		u.repo.AddTargetContent("targets", "obj/"+o.name, tuftest.NewGenerated(o.size, uint64(i+1)), nil)
	}
	u.repo.Publish()
	return u
}

func client(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableCompression: true}}
}

// get fetches url and returns the body length.
func get(c *http.Client, url string) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return n, err
}

// BenchmarkCachedHit measures cached hits of each object size on
// Patchgate and on nginx proxy_cache in one run, interleaved in turns of
// requests/(2*cycles) GETs: one server, the other, the other again, the
// first (A B B A), cycles times per iteration, so that a load that comes
// and goes on this shared machine weighs on both alike.
// Both servers get the same client, concurrency and keep-alive
// connections. It reports each server's requests/s, MiB/s and CPU seconds
// per GiB, and the ratio Patchgate / nginx of requests/s. Without nginx it
// measures Patchgate alone.
//
// For objects served from memory (4 KiB) a third contender, "floor", is a
// handler in the Patchgate process that answers the same size from a
// constant slice with preset headers: what net/http costs at the least.
func BenchmarkCachedHit(b *testing.B) {
	parent := b
	u := newUpstream(b)
	for _, o := range objects {
		var runs []*run
		// Servers start on the first call (b.Run calls twice: b.N = 1,
		// then the -benchtime count), not for sizes the filter skips.
		setup := func(b *testing.B) {
			if runs != nil {
				return
			}
			// The servers' directories belong to the parent benchmark:
			// a sub-benchmark's would go after its b.N = 1 call.
			pg := startPatchgate(b, parent.TempDir(), u, anywhere())
			runs = []*run{{s: pg, url: pg.base + "/obj/" + o.name}}
			if o.size <= 64<<10 {
				lean := &server{name: "lean", pids: pg.pids, stop: func() {}}
				runs = append(runs, &run{s: lean, url: pg.lean + "/obj/" + o.name})
				floor := &server{name: "floor", pids: pg.pids, stop: func() {}}
				runs = append(runs, &run{s: floor, url: pg.floor + "/" + strconv.FormatInt(o.size, 10)})
			}
			if ng := startNginx(b, parent.TempDir(), u, anywhere()); ng != nil {
				runs = append(runs, &run{s: ng, url: ng.base + "/obj/" + o.name})
			} else {
				b.Log("nginx not installed (apt-get install nginx): Patchgate alone")
			}
			for _, r := range runs {
				r.c = client(o.concurrency)
				if _, err := get(r.c, r.url); err != nil { // the miss
					b.Fatal(err)
				}
				if _, err := r.round(o.concurrency, o.concurrency*4); err != nil { // open every connection
					b.Fatal(err)
				}
			}
		}
		b.Run(o.name, func(b *testing.B) {
			b.StopTimer()
			setup(b)
			abba := turns(runs)
			turn := o.requests / (2 * o.cycles)
			load0 := loadAvg()
			b.StartTimer()
			for range b.N {
				for range o.cycles {
					for _, r := range abba {
						if err := r.measure(o.concurrency, turn); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			for _, r := range runs {
				b.ReportMetric(float64(r.requests)/r.secs, r.s.name+"-req/s")
				b.ReportMetric(float64(r.bytes)/(1<<20)/r.secs, r.s.name+"-MiB/s")
				b.ReportMetric(r.cpu/(float64(r.bytes)/(1<<30)), r.s.name+"-cpu-s/GiB")
			}
			if last := runs[len(runs)-1]; last.s.name == "nginx" {
				b.ReportMetric((float64(runs[0].requests)/runs[0].secs)/(float64(last.requests)/last.secs), "ratio-req/s")
				if runs[1].s.name == "lean" {
					b.ReportMetric((float64(runs[1].requests)/runs[1].secs)/(float64(last.requests)/last.secs), "lean-ratio-req/s")
				}
			}
			b.ReportMetric(0, "ns/op")
			b.Logf("b.N=%d: load average (1, 5, 15 min) %s before, %s after", b.N, load0, loadAvg())
		})
		for _, r := range runs {
			r.s.stop()
		}
	}
}

// run is one server's share of a side-by-side measurement.
type run struct {
	s        *server
	c        *http.Client
	url      string
	requests int
	bytes    int64
	secs     float64
	cpu      float64 // server CPU seconds
	client   float64 // load generator CPU seconds, when it is a process of its own (wrk)
}

func (r *run) reset() { r.requests, r.bytes, r.secs, r.cpu, r.client = 0, 0, 0, 0, 0 }

// turns resets the totals of runs and returns the order of their turns in
// one cycle: each run, then each again in reverse (A B B A).
func turns(runs []*run) []*run {
	for _, r := range runs {
		r.reset()
	}
	abba := append(slices.Clone(runs), runs...)
	slices.Reverse(abba[len(runs):])
	return abba
}

// measure sends n requests and adds them to the run's totals.
func (r *run) measure(concurrency, n int) error {
	cpu0 := cpuSeconds(r.s.pids())
	start := now()
	bytes, err := r.round(concurrency, n)
	r.secs += now().Sub(start).Seconds()
	r.cpu += cpuSeconds(r.s.pids()) - cpu0
	r.requests += n
	r.bytes += bytes
	return err
}

// round sends n GETs from concurrency keep-alive clients and returns the
// body bytes received.
func (r *run) round(concurrency, n int) (int64, error) {
	var next, bytes atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				got, err := get(r.c, r.url)
				if err != nil {
					failed.Store(err)
					return
				}
				bytes.Add(got)
			}
		})
	}
	wg.Wait()
	err, _ := failed.Load().(error)
	return bytes.Load(), err
}

// loadAvg is the machine's load average (1, 5, 15 minutes), which the
// benchmark reports because other work shares its CPUs.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkColdCoalescing sends 20 concurrent requests for a target no
// server has seen and reports how many upstream fetches they cost.
func BenchmarkColdCoalescing(b *testing.B) {
	const clients = 20
	u := newUpstream(b)
	for _, start := range []func(*testing.B, string, *upstream, placement) *server{startPatchgate, startNginx} {
		s := start(b, b.TempDir(), u, anywhere())
		if s == nil {
			b.Log("nginx not installed (apt-get install nginx): skipping its cold run")
			continue
		}
		b.Run(s.name, func(b *testing.B) {
			c := client(clients)
			fetches := 0
			for i := range b.N {
				path := fmt.Sprintf("cold/%s-%d.bin", s.name, i)
				u.repo.AddTargetContent("targets", path, tuftest.NewGenerated(8<<20, uint64(100+i)), nil)
				u.repo.Publish()
				if s.name == "patchgate" {
					resp, err := http.Post(s.base[:len(s.base)-len("/repos/demo/targets")]+"/refresh", "", nil)
					if err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
				}
				url := s.base + "/" + path
				var wg sync.WaitGroup
				var failed atomic.Value
				for range clients {
					wg.Go(func() {
						if _, err := get(c, url); err != nil {
							failed.Store(err)
						}
					})
				}
				wg.Wait()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				fetches += u.repo.TargetGets(path)
			}
			b.ReportMetric(float64(fetches)/float64(b.N), "upstream-fetches/op")
		})
		s.stop()
	}
}

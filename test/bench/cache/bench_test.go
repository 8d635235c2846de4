package cache

import (
	"fmt"
	"io"
	"net/http"
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
	requests    int // per benchmark iteration
	concurrency int
}{
	{"4KiB", 4 << 10, 20000, 32},
	{"1MiB", 1 << 20, 2000, 16},
	{"100MiB", 100 << 20, 40, 4},
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
// Patchgate and on nginx proxy_cache, side by side in one run.
func BenchmarkCachedHit(b *testing.B) {
	u := newUpstream(b)
	servers := []func(*testing.B, *upstream) *server{startPatchgate, startNginx}
	for _, o := range objects {
		for _, start := range servers {
			s := start(b, u)
			b.Run(o.name+"/"+s.name, func(b *testing.B) {
				url := s.base + "/obj/" + o.name
				c := client(o.concurrency)
				if _, err := get(c, url); err != nil { // warm the cache (the miss)
					b.Fatal(err)
				}
				b.ResetTimer()
				var bytes atomic.Int64
				cpu0 := cpuSeconds(s.pids())
				start := now()
				for range b.N {
					var next atomic.Int64
					var wg sync.WaitGroup
					var failed atomic.Value
					for range o.concurrency {
						wg.Go(func() {
							for next.Add(1) <= int64(o.requests) {
								n, err := get(c, url)
								if err != nil {
									failed.Store(err)
									return
								}
								bytes.Add(n)
							}
						})
					}
					wg.Wait()
					if err, _ := failed.Load().(error); err != nil {
						b.Fatal(err)
					}
				}
				secs := now().Sub(start).Seconds()
				cpu := cpuSeconds(s.pids()) - cpu0
				gib := float64(bytes.Load()) / (1 << 30)
				b.ReportMetric(float64(b.N*o.requests)/secs, "req/s")
				b.ReportMetric(float64(bytes.Load())/(1<<20)/secs, "MiB/s")
				b.ReportMetric(cpu/gib, "server-cpu-s/GiB")
				b.ReportMetric(0, "ns/op")
			})
			s.stop()
		}
	}
}

// BenchmarkColdCoalescing sends 20 concurrent requests for a target no
// server has seen and reports how many upstream fetches they cost.
func BenchmarkColdCoalescing(b *testing.B) {
	const clients = 20
	u := newUpstream(b)
	servers := []func(*testing.B, *upstream) *server{startPatchgate, startNginx}
	for _, start := range servers {
		s := start(b, u)
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

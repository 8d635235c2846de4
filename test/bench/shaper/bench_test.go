package shaper

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgate/patchgate/tuf/tuftest"
)

const (
	targetPath = "obj/256MiB"
	targetSize = 256 << 20
	siteCap    = 50_000_000 // bytes per second for the accuracy and fairness runs
	warm       = time.Second
	window     = 4 * time.Second
)

type upstream struct{ repo *tuftest.Repo }

func newUpstream(b *testing.B) *upstream {
	u := &upstream{repo: tuftest.New(b, tuftest.WithHashes("sha256"))}
	u.repo.AddTargetContent("targets", targetPath, tuftest.NewGenerated(targetSize, 1), nil)
	u.repo.Publish()
	return u
}

// get reads url (at most limit bytes when limit > 0) and returns how many it read.
func get(c *http.Client, url string, limit int64) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var r io.Reader = resp.Body
	if limit > 0 {
		r = io.LimitReader(r, limit)
	}
	return io.Copy(io.Discard, r)
}

// clientFrom is an HTTP client whose connections come from loopback address src.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}

func jain(xs []float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum, sq = sum+x, sq+x*x
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}

// BenchmarkShaperCapAndFairness runs n clients, each from its own loopback address,
// downloading without pause under a 50 MB/s site cap, and reports the total served in
// the measured window against the cap (accuracy, 1.0 is exact) and Jain's fairness
// index over the clients (1.0 is a perfectly equal share).
func BenchmarkShaperCapAndFairness(b *testing.B) {
	u := newUpstream(b)
	var srv *server
	parent := b
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			if srv == nil {
				srv = startServer(parent, u, "cap", siteCap, 0)
			}
			var accSum, jainSum, minShare float64
			minShare = math.Inf(1)
			for range b.N {
				got, elapsed := run(b, srv.url, n)
				var total float64
				rates := make([]float64, n)
				for i, g := range got {
					rates[i] = float64(g) / elapsed.Seconds()
					total += rates[i]
				}
				accSum += total / siteCap
				jainSum += jain(rates)
				for _, r := range rates {
					minShare = min(minShare, r/(siteCap/float64(n)))
				}
			}
			b.ReportMetric(accSum/float64(b.N), "cap-accuracy")
			b.ReportMetric(jainSum/float64(b.N), "jain")
			b.ReportMetric(minShare, "min-share")
		})
	}
}

// run downloads continuously from n clients and returns each one's bytes during the
// window after the warm-up, and the window's length.
func run(b *testing.B, url string, n int) ([]int64, time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counts := make([]atomic.Int64, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		c := clientFrom("127.0.1." + strconv.Itoa(i+1))
		wg.Go(func() {
			defer c.CloseIdleConnections()
			buf := make([]byte, 64<<10)
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err != nil {
					return
				}
				for {
					k, err := resp.Body.Read(buf)
					counts[i].Add(int64(k))
					if err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		})
	}
	time.Sleep(warm) // the shaper paces in real time; so does the measurement
	before := make([]int64, n)
	for i := range counts {
		before[i] = counts[i].Load()
	}
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start)
	got := make([]int64, n)
	for i := range counts {
		got[i] = counts[i].Load() - before[i]
	}
	cancel()
	return got, elapsed
}

// BenchmarkShaperCPU reports the server's CPU seconds per GiB served through the real
// cache: off (no shaper: sendfile), count (a shaper that caps nothing: counts bytes,
// keeps sendfile), cap-open (site and client caps far above what loopback carries:
// every 32 KiB chunk goes through both token buckets) and cap-400MB (a binding
// 400 MB/s site cap).
func BenchmarkShaperCPU(b *testing.B) {
	u := newUpstream(b)
	modes := []struct {
		name         string
		mode         string
		site, client int64
	}{
		{"off", "off", 0, 0},
		{"count", "count", 0, 0},
		{"cap-open", "cap", 1 << 40, 1 << 40},
		{"cap-400MB", "cap", 400_000_000, 0},
	}
	for _, m := range modes {
		var srv *server // started on first use, by the parent: a filtered-out mode costs nothing
		parent := b
		b.Run(m.name, func(b *testing.B) {
			if srv == nil {
				srv = startServer(parent, u, m.mode, m.site, m.client)
			}
			c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			// Wait for the warm-up's background fill to finish: one full read.
			if n, err := get(c, srv.url, 0); err != nil || n != targetSize {
				b.Fatalf("warm read: %d bytes, %v", n, err)
			}
			b.SetBytes(4 * targetSize)
			b.ResetTimer()
			cpu0 := cpuSeconds(b, srv.pid)
			for range b.N {
				for range 4 { // 1 GiB
					if n, err := get(c, srv.url, 0); err != nil || n != targetSize {
						b.Fatalf("read %d bytes, %v", n, err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric((cpuSeconds(b, srv.pid)-cpu0)/float64(b.N), "cpu-s/GiB")
		})
	}
}

package curves

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

// BenchmarkCurveDNSAllowlist: the resolver's memory, list load time and QPS against the
// size of its allowlist. In one process with its load generator (32 clients, one query
// outstanding each; half the queries for 1,000 listed names spread over the list, half
// for names not listed), so the QPS is a relative figure: its shape against the list
// size is what counts.
func BenchmarkCurveDNSAllowlist(b *testing.B) {
	once(b, "dns-allowlist", func(b *testing.B) []*Curve {
		up := fakeUpstream(b)
		var xs, heap, load, qps, loadavg []float64
		for _, n := range sizes([]int{1000, 10000, 100000, 300000, 1000000}, []int{1000, 10000}) {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("host%d.vendor%d.example", i, i%997)
			}
			h0 := heapMiB()
			t0 := time.Now()
			s, err := resolver.New(resolver.Config{
				Listen:          []string{"127.0.0.1:0"},
				Upstreams:       []resolver.Upstream{{Address: up, Protocol: "udp"}},
				UpstreamTimeout: 2 * time.Second, HealthInterval: time.Hour, ReloadInterval: time.Hour,
				LocalTTL: 60 * time.Second,
				Lists:    []resolver.List{{Name: "allowed", Names: names}},
				Table:    segment.NewTable(segment.Section{{Name: "loopback", Clients: []conf.Prefix{conf.MustPrefix("127.0.0.0/8")}}}),
				Segments: []resolver.Segment{{Name: "loopback", Allow: []string{"allowed"}}},
				Cache:    resolver.CacheConfig{Size: 20000, MaxTTL: 24 * time.Hour, NegativeTTL: 5 * time.Minute},
				Limits:   resolver.Limits{MaxConcurrent: 512, UDPBufferSize: 1232, TCPIdleTimeout: 10 * time.Second, TCPMaxQueries: 100, TCPMaxConnections: 256},
				QueryLog: resolver.QueryLogConfig{Ring: 1000, Log: "blocked", LogRate: 10, EventWindow: time.Minute},
			}, resolver.Options{Logger: discard()})
			if err == nil {
				err = s.Listen()
			}
			if err != nil {
				b.Fatal(err)
			}
			loadTime := time.Since(t0)
			names = nil // the resolver keeps its own copy, or not: measure what it holds
			h1 := heapMiB()
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() { ran <- s.Run(ctx) }()
			var ask []string
			for i := range 1000 {
				ask = append(ask, fmt.Sprintf("host%d.vendor%d.example.", i*n/1000, (i*n/1000)%997))
				ask = append(ask, fmt.Sprintf("other%d.blocked.example.", i))
			}
			blast(s.Addrs()[0], ask, 32, 500*time.Millisecond) // warm the cache
			la := loadAvg()
			q := blast(s.Addrs()[0], ask, 32, 2*time.Second)
			cancel()
			<-ran
			xs = append(xs, float64(n))
			heap = append(heap, h1-h0)
			load = append(load, loadTime.Seconds())
			qps = append(qps, q/1000)
			loadavg = append(loadavg, la)
			b.Logf("names %d: heap +%.1f MiB, list load %v, %.0f QPS, load average %.1f", n, h1-h0, loadTime, q, la)
		}
		note := loadNote(loadavg)
		return []*Curve{
			{Name: "dns-allowlist-memory", Title: "DNS: live heap and list load time vs allowlist size", XLabel: "allowlisted names",
				YLabel: "MiB, s", LogX: true, LogY: true, X: xs, Series: []Series{{"heap MiB", heap}, {"list load s", load}}, Notes: []string{note}},
			{Name: "dns-allowlist-qps", Title: "DNS: QPS vs allowlist size (in-process load generator)", XLabel: "allowlisted names",
				YLabel: "kQPS", LogX: true, X: xs, Series: []Series{{"kQPS", qps}}, Notes: []string{note}},
		}
	})
}

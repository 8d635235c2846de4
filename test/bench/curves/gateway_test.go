package curves

import (
	"context"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	gw "github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/test/bench/benchstat"
	gwlab "github.com/patchgate/patchgate/test/gateway"
	"github.com/patchgate/patchgate/test/netlab"
)

// BenchmarkCurveGatewaySet: the time from a DNS answer to its address in the kernel's
// set (Gateway.Learned returns once the kernel acknowledged the batch) against the
// number of addresses already in the set, with the peer (one `nft add element`
// process per answer) at each size, and the gateway's live heap. In the namespaces of
// test/gateway's lab (as root; needs nft and nsenter).
func BenchmarkCurveGatewaySet(b *testing.B) {
	once(b, "gateway-set", func(b *testing.B) []*Curve {
		netlab.Require(b, "nft", "nsenter")
		l := gwlab.New(b)
		h0 := heapMiB()
		g, err := gw.New(gw.Policy{
			Segments: []gw.Segment{{Name: "devices", Device: "eth0", Clients: []netip.Prefix{gwlab.DeviceSubnet},
				Ports: []gw.Port{{Proto: unix.IPPROTO_TCP, Num: 443}}}},
			Local: []netip.Prefix{gwlab.DeviceSubnet}, Grace: 30 * time.Second, MaxTimeout: 24 * time.Hour,
			LogGroup: 1717, Stats: time.Hour, Refresh: time.Hour, OpenOnStop: true,
		}, gw.Options{Logger: discard(), Registry: prometheus.NewRegistry(), NetNS: l.ApplianceFD})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- g.Run(ctx) }()
		defer func() { cancel(); <-ran; g.Close() }()
		for !g.Ready() {
			time.Sleep(time.Millisecond)
		}
		addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)}) }
		next := 0
		var xs, p50, p99, cli, heap, la []float64
		for _, n := range sizes([]int{1000, 3000, 10000, 30000, 100000}, []int{1000, 3000}) {
			var fill []netip.Addr
			for ; next < n; next++ {
				fill = append(fill, addr(next))
			}
			if len(fill) > 0 {
				g.Learned("devices", gwlab.DeviceAddr, "fill.example", fill, time.Hour)
			}
			lv := loadAvg()
			var single, peer []time.Duration
			for range 300 {
				a := addr(next)
				next++
				t0 := time.Now()
				g.Learned("devices", gwlab.DeviceAddr, "bench.example", []netip.Addr{a}, time.Hour)
				single = append(single, time.Since(t0))
			}
			for range 10 {
				a := addr(next)
				next++
				t0 := time.Now()
				if out, err := exec.Command("nsenter", "--net=/run/netns/"+l.Appliance.NS, "nft", "add", "element", "inet", "patchgate",
					"seg_devices_v4", "{ "+gwlab.DeviceAddr.String()+" . "+a.String()+" timeout 1h }").CombinedOutput(); err != nil {
					b.Fatalf("nft add element: %v\n%s", err, out)
				}
				peer = append(peer, time.Since(t0))
			}
			h := heapMiB() - h0
			xs = append(xs, float64(n))
			p50, p99 = append(p50, ms(benchstat.Percentile(single, .5))), append(p99, ms(benchstat.Percentile(single, .99)))
			cli, heap, la = append(cli, ms(benchstat.Percentile(peer, .5))), append(heap, h), append(la, lv)
			b.Logf("set %d: learn p50 %v p99 %v, nft CLI p50 %v, heap +%.1f MiB, load %.1f", n,
				benchstat.Percentile(single, .5), benchstat.Percentile(single, .99), benchstat.Percentile(peer, .5), h, lv)
		}
		note := loadNote(la)
		return []*Curve{
			{Name: "gateway-set-latency", Title: "Gateway: answer-to-set latency vs set size", XLabel: "addresses in the set",
				YLabel: "ms", LogX: true, LogY: true, X: xs, Series: []Series{{"learn p50", p50}, {"learn p99", p99}, {"nft CLI p50", cli}}, Notes: []string{note}},
			{Name: "gateway-set-memory", Title: "Gateway: live heap vs set size", XLabel: "addresses in the set",
				YLabel: "MiB", LogX: true, X: xs, Series: []Series{{"heap MiB", heap}}, Notes: []string{note}},
		}
	})
}

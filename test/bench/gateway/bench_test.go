package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	gw "github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/test/bench/benchstat"
	gwlab "github.com/patchgate/patchgate/test/gateway"
	"github.com/patchgate/patchgate/test/netlab"
)

func policy() gw.Policy {
	return gw.Policy{
		Segments: []gw.Segment{{Name: "devices", Device: "eth0", Clients: []netip.Prefix{gwlab.DeviceSubnet},
			Ports: []gw.Port{{Proto: unix.IPPROTO_TCP, Num: 5201}}}}, // iperf3
		Local:      []netip.Prefix{gwlab.DeviceSubnet},
		Grace:      30 * time.Second,
		MaxTimeout: 24 * time.Hour,
		LogGroup:   1717,
		Stats:      time.Hour,
		Refresh:    time.Hour,
		OpenOnStop: true, // each run starts from no table
	}
}

// start runs a gateway in the lab's appliance namespace until stop is called.
func start(b *testing.B, l *gwlab.Lab) (g *gw.Gateway, stop func()) {
	b.Helper()
	g, err := gw.New(policy(), gw.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), NetNS: l.ApplianceFD})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for !g.Ready() {
		time.Sleep(time.Millisecond)
	}
	return g, func() {
		cancel()
		<-done
		g.Close()
	}
}

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})
}

// BenchmarkAnswerToSet: Learned returns once the kernel acknowledged the batch that
// holds the address, so its duration is the time from answer to element present.
// Reported: p50/p99 of one answer at a time, of answers arriving 64 at once, and of
// the peer, one `nft add element` process per answer (entering the namespace with
// nsenter, which only joins it). The element count is checked
// against the kernel at the end.
func BenchmarkAnswerToSet(b *testing.B) {
	netlab.Require(b, "nft", "nsenter")
	l := gwlab.New(b)
	g, stop := start(b, l)
	defer stop()
	next := 0
	var single, burst, peer []time.Duration
	for range b.N {
		for range 500 {
			a := addr(next)
			next++
			t0 := time.Now()
			g.Learned("devices", gwlab.DeviceAddr, "bench.example", []netip.Addr{a}, time.Hour)
			single = append(single, time.Since(t0))
		}
		for range 20 {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 64 {
				a := addr(next)
				next++
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					g.Learned("devices", gwlab.DeviceAddr, "bench.example", []netip.Addr{a}, time.Hour)
					d := time.Since(t0)
					mu.Lock()
					burst = append(burst, d)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		for range 50 {
			a := addr(next)
			next++
			t0 := time.Now()
			out, err := exec.Command("nsenter", "--net=/run/netns/"+l.Appliance.NS, "nft", "add", "element", "inet", "patchgate",
				"seg_devices_v4", "{ "+a.String()+" timeout 1h }").CombinedOutput()
			if err != nil {
				b.Fatalf("nft add element: %v\n%s", err, out)
			}
			peer = append(peer, time.Since(t0))
		}
	}
	b.StopTimer()
	out := l.Nft(b, "list", "set", "inet", "patchgate", "seg_devices_v4")
	if got := strings.Count(out, "expires"); got != next {
		b.Fatalf("set holds %d elements, want %d", got, next)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(benchstat.Percentile(single, .5)), "single-p50-µs")
	b.ReportMetric(us(benchstat.Percentile(single, .99)), "single-p99-µs")
	b.ReportMetric(us(benchstat.Percentile(burst, .5)), "burst64-p50-µs")
	b.ReportMetric(us(benchstat.Percentile(burst, .99)), "burst64-p99-µs")
	b.ReportMetric(us(benchstat.Percentile(peer, .5)), "nft-cli-p50-µs")
	b.ReportMetric(us(benchstat.Percentile(peer, .99)), "nft-cli-p99-µs")
	b.ReportMetric(float64(benchstat.Percentile(single, .5))/float64(benchstat.Percentile(peer, .5)), "p50-ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkForward measures TCP throughput from the device to the internet through
// the appliance with iperf3 (2s per run), in each iteration: no table, the ruleset
// with the server learned, and the ruleset with 10,000 more learned addresses.
func BenchmarkForward(b *testing.B) {
	netlab.Require(b, "iperf3", "nft")
	l := gwlab.New(b)
	srv := exec.Command("ip", "netns", "exec", l.InternetNS, "iperf3", "-s", "-B", gwlab.UpdateAddr.String())
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	run := func() float64 {
		var out []byte
		var err error
		for try := 0; try < 20; try++ { // the server may still be starting
			out, err = exec.Command("ip", "netns", "exec", l.Device.NS, "iperf3", "-c", gwlab.UpdateAddr.String(), "-t", "2", "-J").Output()
			if err == nil && !strings.Contains(string(out), `"error"`) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			b.Fatalf("iperf3: %v\n%s", err, out)
		}
		var r struct {
			Error string `json:"error"`
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.Error != "" {
			b.Fatalf("iperf3 JSON: %v %s", err, r.Error)
		}
		return r.End.SumReceived.BitsPerSecond / 1e6
	}
	var none, loaded, big []float64
	many := make([]netip.Addr, 10000)
	for i := range many {
		many[i] = addr(i)
	}
	configs := []func(){
		func() { none = append(none, run()) },
		func() {
			g, stop := start(b, l)
			defer stop()
			g.Learned("devices", gwlab.DeviceAddr, gwlab.UpdateName, []netip.Addr{gwlab.UpdateAddr}, time.Hour)
			loaded = append(loaded, run())
		},
		func() {
			g, stop := start(b, l)
			defer stop()
			g.Learned("devices", gwlab.DeviceAddr, gwlab.UpdateName, []netip.Addr{gwlab.UpdateAddr}, time.Hour)
			g.Learned("devices", gwlab.DeviceAddr, "many.example", many, time.Hour)
			big = append(big, run())
		},
	}
	run() // warm up: the server is listening, the path's neighbours are resolved
	for i := range b.N {
		// Rotate the order so that a drift of the machine's load hits each alike.
		for j := range configs {
			configs[(i+j)%len(configs)]()
		}
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	b.ReportMetric(mean(none), "none-Mbit/s")
	b.ReportMetric(mean(loaded), "ruleset-Mbit/s")
	b.ReportMetric(mean(big), "ruleset10k-Mbit/s")
	b.ReportMetric(mean(loaded)/mean(none), "ratio")
	b.ReportMetric(mean(big)/mean(none), "ratio10k")
	b.ReportMetric(0, "ns/op")
	b.Logf("forward Mbit/s per run: none %.0f, ruleset %.0f, ruleset+10k %.0f", none, loaded, big)
}

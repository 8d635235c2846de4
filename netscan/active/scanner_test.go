package active

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/scantest"
)

// These tests probe real servers on loopback addresses (127.0.0.0/8 is all
// on lo on Linux); nothing leaves the host. The network-namespace lab in
// test/lab covers the ARP sweep, snmpd and the rest.

// listener is a TCP server on addr that records connections and bytes.
type listener struct {
	ln    net.Listener
	conns atomic.Int64
	bytes atomic.Int64
	wg    sync.WaitGroup
}

func listen(t *testing.T, addr string) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	l := &listener{ln: ln}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.conns.Add(1)
			l.wg.Go(func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _ := io.Copy(io.Discard, c)
				l.bytes.Add(n)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); l.wg.Wait() })
	return l
}

func (l *listener) port() uint16 { return uint16(l.ln.Addr().(*net.TCPAddr).Port) }

// serveHTTP runs h on addr:0 and returns the port.
func serveHTTP(t *testing.T, addr string, h http.Handler) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func newScanner(t *testing.T, cfg Config) (*Scanner, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 500 * time.Millisecond
	s, err := New(cfg, m, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, m
}

func scanAll(t *testing.T, s *Scanner) ([]netscan.Observation, Summary) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var obs []netscan.Observation
	sum, err := s.Scan(ctx, func(o netscan.Observation) { obs = append(obs, o) }, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return obs, sum
}

func facts(obs []netscan.Observation, addr netip.Addr, k netscan.Key) []string {
	var out []string
	for _, o := range obs {
		if o.Addr == addr {
			out = append(out, o.All(k)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// scanHost scans host alone with cfg, its TCP and ping port set to port, and returns
// the observations.
func scanHost(t *testing.T, host string, port uint16, cfg Config) []netscan.Observation {
	t.Helper()
	cfg.Subnets = []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(host), 32)}
	cfg.Ports, cfg.PingPorts = []uint16{port}, []uint16{port}
	s, _ := newScanner(t, cfg)
	obs, _ := scanAll(t, s)
	return obs
}

// checkFacts checks that host was observed with exactly the values of want, by key.
func checkFacts(t *testing.T, obs []netscan.Observation, host string, want map[netscan.Key][]string) {
	t.Helper()
	for k, w := range want {
		if diff := cmp.Diff(w, facts(obs, netip.MustParseAddr(host), k)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

// TestDenyListNeverSentData points every probe that could talk at a
// deny-listed port: the HTTP probe, the IPP probe. The listener there must
// see connections (the connect-only check) and not one byte.
func TestDenyListNeverSentData(t *testing.T) {
	raw := listen(t, "127.0.0.3:9100")
	s, _ := newScanner(t, Config{
		Subnets:    []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")},
		Ports:      []uint16{9100},
		PingPorts:  []uint16{9100},
		HTTPPorts:  []uint16{9100},
		HTTPSPorts: []uint16{9100},
		IPPPort:    9100,
		Probes:     []Probe{ProbeTCP, ProbeHTTP, ProbeIPP},
	})
	obs, sum := scanAll(t, s)
	if sum.Live != 1 {
		t.Fatalf("Live = %d, want 1", sum.Live)
	}
	if got := facts(obs, netip.MustParseAddr("127.0.0.3"), netscan.KeyTCPOpen); !slices.Equal(got, []string{"9100"}) {
		t.Errorf("open ports = %v, want [9100]", got)
	}
	raw.ln.Close()
	raw.wg.Wait()
	if raw.conns.Load() == 0 {
		t.Errorf("listener on 9100 saw no connection: the test proves nothing")
	}
	if n := raw.bytes.Load(); n != 0 {
		t.Errorf("listener on 9100 received %d bytes, want 0", n)
	}
}

func TestDenied(t *testing.T) {
	for _, p := range []uint16{515, 9100, 9103, 9107, 9999} {
		if !Denied(p) {
			t.Errorf("Denied(%d) = false", p)
		}
	}
	for _, p := range []uint16{80, 631, 9099, 9108, 161} {
		if Denied(p) {
			t.Errorf("Denied(%d) = true", p)
		}
	}
}

func TestHTTPProbe(t *testing.T) {
	port := serveHTTP(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Zebra-Link-OS httpd")
		io.WriteString(w, "<html><head><TITLE>\n Zebra &amp; ZT410 </TITLE></head></html>")
	}))
	obs := scanHost(t, "127.0.0.2", port, Config{HTTPPorts: []uint16{port}, Probes: []Probe{ProbeTCP, ProbeHTTP}})
	checkFacts(t, obs, "127.0.0.2", map[netscan.Key][]string{
		netscan.KeyHTTPTitle:  {"Zebra & ZT410"},
		netscan.KeyHTTPServer: {"Zebra-Link-OS httpd"},
	})
}

// ippResponse encodes a Get-Printer-Attributes answer (request 1). The IPP side is a
// Go handler here; the lab runs ippeveprinter, a real IPP server.
func ippResponse(attrs ...string) []byte { return scantest.IPPAnswer(1, attrs...) }

func TestIPPProbe(t *testing.T) {
	var gotReq []byte
	port := serveHTTP(t, "127.0.0.4:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ipp/print" || r.Header.Get("Content-Type") != "application/ipp" {
			http.NotFound(w, r)
			return
		}
		gotReq, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/ipp")
		w.Write(ippResponse("printer-make-and-model", "Zebra ZT410", "printer-firmware-string-version", "V75.20.01Z"))
	}))
	obs := scanHost(t, "127.0.0.4", port, Config{IPPPort: port, Probes: []Probe{ProbeTCP, ProbeIPP}})
	checkFacts(t, obs, "127.0.0.4", map[netscan.Key][]string{
		netscan.KeyIPPMakeModel: {"Zebra ZT410"},
		netscan.KeyIPPFirmware:  {"V75.20.01Z"},
	})
	status, attrs, err := ParseIPPResponse(append([]byte{1, 1, 0, 0xb, 0, 0, 0, 1}, gotReq[8:]...))
	if err != nil || status != 0xb || attrs["printer-uri"] == "" {
		t.Errorf("the request sent does not parse as IPP: %v %#x %v", err, status, attrs)
	}
}

// TestExclusions scans a /29 of loopback with one host excluded by list,
// one by subnet and one by callback: none of them sees a connection.
func TestExclusions(t *testing.T) {
	port := uint16(0)
	lns := map[string]*listener{}
	for i := 1; i <= 6; i++ {
		addr := "127.0.1." + strconv.Itoa(i)
		l := listen(t, net.JoinHostPort(addr, strconv.Itoa(int(port))))
		if port == 0 {
			port = l.port()
		}
		lns[addr] = l
	}
	var asked sync.Map
	s, m := newScanner(t, Config{
		Subnets:        []netip.Prefix{netip.MustParsePrefix("127.0.1.0/29")},
		ExcludeHosts:   []netip.Addr{netip.MustParseAddr("127.0.1.2")},
		ExcludeSubnets: []netip.Prefix{netip.MustParsePrefix("127.0.1.4/31")}, // .4 and .5
		Exclude: func(a netip.Addr, _ netscan.MAC) bool {
			asked.Store(a, true)
			return a == netip.MustParseAddr("127.0.1.6")
		},
		Ports:     []uint16{port},
		PingPorts: []uint16{port},
		Probes:    []Probe{ProbeTCP},
	})
	_, sum := scanAll(t, s)
	for addr, l := range lns {
		l.ln.Close()
		l.wg.Wait()
		excluded := addr == "127.0.1.2" || addr == "127.0.1.4" || addr == "127.0.1.5" || addr == "127.0.1.6"
		if got := l.conns.Load(); excluded && got != 0 {
			t.Errorf("excluded %s got %d connections", addr, got)
		} else if !excluded && got == 0 {
			t.Errorf("%s got no connection", addr)
		}
	}
	if sum.Live != 2 || sum.Excluded != 4 {
		t.Errorf("summary = %+v, want 2 live (.1 .3), 4 excluded", sum)
	}
	if _, ok := asked.Load(netip.MustParseAddr("127.0.1.2")); ok {
		t.Errorf("Exclude callback asked about a host the list already excludes")
	}
	_ = m
}

// TestRateCaps: whatever the scan does, the packets it charged fit the
// per-host cap over its duration (plus one burst).
func TestRateCaps(t *testing.T) {
	var ports []uint16
	for i := 0; i < 6; i++ {
		ports = append(ports, listen(t, "127.0.2.1:0").port()) // six open ports: each connect costs 4
	}
	s, _ := newScanner(t, Config{
		Subnets:   []netip.Prefix{netip.MustParsePrefix("127.0.2.1/32")},
		Ports:     ports,
		PingPorts: ports[:1],
		HostRate:  20,
		Probes:    []Probe{ProbeTCP},
	})
	checkCap(t, s, 20, 20, hostBurst)
}

// checkCap runs s's scan and checks that it charged no more packets than rate per
// second of its duration plus burst allow; fewer than least packets prove nothing.
func checkCap(t *testing.T, s *Scanner, least int64, rate, burst float64) {
	t.Helper()
	start := time.Now()
	_, sum := scanAll(t, s)
	elapsed := time.Since(start).Seconds()
	if sum.Packets < least {
		t.Fatalf("charged %d packets: the test proves nothing", sum.Packets)
	}
	if limit := rate*elapsed + burst; float64(sum.Packets) > limit {
		t.Errorf("charged %d packets in %.2fs, more than the cap allows (%.0f)", sum.Packets, elapsed, limit)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"ok", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, true},
		{"none", Config{}, false},
		{"too big", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, false},
		{"ipv6 subnet", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}}, false},
		{"ipv6 host", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")}}, true},
		{"bad probe", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Probes: []Probe{"nmap-os"}}, false},
		{"rate", Config{Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, HostRate: 5000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestAddresses(t *testing.T) {
	c := Config{Subnets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/30"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("198.51.100.8/31")}}
	var got []string
	for _, a := range c.addresses() {
		got = append(got, a.String())
	}
	want := []string{"192.0.2.1", "192.0.2.2", "198.51.100.8", "198.51.100.9"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
}

// TestGlobalCap: many hosts at once still fit the global cap over the scan's
// duration (plus its burst).
func TestGlobalCap(t *testing.T) {
	l := listen(t, "127.0.3.1:0")
	port := l.port()
	s, _ := newScanner(t, Config{
		Subnets:    []netip.Prefix{netip.MustParsePrefix("127.0.3.0/28")}, // 14 hosts, all answering on loopback
		Ports:      []uint16{port, port + 1},
		PingPorts:  []uint16{port},
		GlobalRate: 100,
		Probes:     []Probe{ProbeTCP},
	})
	checkCap(t, s, 50, 100, float64(globalBurst(100)))
}

package resolver

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/clock/clocktest"
)

// listServer is a resolver whose clinical allowlist is the file it returns.
func listServer(t *testing.T, up *fakeUpstream, content string) (*testServer, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.txt")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(up.addr)
	cfg.Lists = append(cfg.Lists, List{Name: "site", Files: []string{"site.txt"}})
	cfg.Segments[0].Allow = []string{"site"}
	return startServer(t, cfg, Options{BaseDir: dir}), path
}

func writeFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// A distinct mtime, whatever the file system's granularity.
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	rcode := func(ts *testServer, name string) string {
		t.Helper()
		return dns.RcodeToString[ts.ask(t, query{name: name}).Rcode]
	}
	tests := []struct {
		name    string
		trigger func(t *testing.T, ts *testServer) // makes the server notice the new file
	}{
		{"Reload method", func(t *testing.T, ts *testServer) { ts.Reload() }},
		{"file change poll", func(t *testing.T, ts *testServer) { ts.clock.Advance(ts.cfg.ReloadInterval) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts, path := listServer(t, up, "update.vendor.example\n")
			if got := rcode(ts, "www.example.com."); got != "NXDOMAIN" {
				t.Fatalf("before reload: www.example.com = %s, want NXDOMAIN", got)
			}
			loads := func() float64 { return metricValue(ts.metrics.reloads.WithLabelValues("ok")) }
			errs := func() float64 { return metricValue(ts.metrics.reloads.WithLabelValues("error")) }

			// A good list: swapped in whole.
			before := loads()
			writeFile(t, path, "# now with the example site\nwww.example.com\n", testEpoch.Add(time.Minute))
			tc.trigger(t, ts)
			clocktest.WaitFor(t, "reload", func() bool { return loads() > before })
			if a, b := rcode(ts, "www.example.com."), rcode(ts, "update.vendor.example."); a != "NOERROR" || b != "NXDOMAIN" {
				t.Errorf("after a good reload: new name %s, removed name %s; want NOERROR, NXDOMAIN", a, b)
			}

			// A bad list: the previous one stays, the line is reported.
			before = errs()
			writeFile(t, path, "update.vendor.example\nnot a name\n", testEpoch.Add(2*time.Minute))
			tc.trigger(t, ts)
			clocktest.WaitFor(t, "failed reload", func() bool { return errs() > before })
			if a, b := rcode(ts, "www.example.com."), rcode(ts, "update.vendor.example."); a != "NOERROR" || b != "NXDOMAIN" {
				t.Errorf("after a bad reload: old name %s, name of the bad file %s; want NOERROR, NXDOMAIN", a, b)
			}
			h := ts.Health()
			if len(h) != 1 || h[0].Code != "resolver-list-invalid" || !strings.Contains(h[0].Text, "site.txt:2:") {
				t.Errorf("Health = %v, want resolver-list-invalid naming site.txt:2", h)
			}

			// Fixed again: the problem goes away.
			before = loads()
			writeFile(t, path, "update.vendor.example\n", testEpoch.Add(3*time.Minute))
			tc.trigger(t, ts)
			clocktest.WaitFor(t, "reload after the fix", func() bool { return loads() > before })
			if h := ts.Health(); len(h) != 0 {
				t.Errorf("Health after the fix = %v, want none", h)
			}
		})
	}
}

func TestBadListAtStartIsBlockedAndReported(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	ts, _ := listServer(t, up, "update.vendor.example\n*.*.bad\n")
	if got := ts.ask(t, query{name: "update.vendor.example."}).Rcode; got != dns.RcodeNameError {
		t.Errorf("name of a list that failed to load = %s, want NXDOMAIN (fail closed)", dns.RcodeToString[got])
	}
	if h := ts.Health(); len(h) != 1 || !strings.Contains(h[0].Text, "site.txt:2:") {
		t.Errorf("Health = %v, want the bad line", h)
	}
}

func TestCacheTTLs(t *testing.T) {
	up := newFakeUpstream(t)
	up.add("short.cdn.vendor.example. 2 IN A 192.0.2.1", "long.cdn.vendor.example. 999999 IN A 192.0.2.2",
		"a.cdn.vendor.example. 300 IN A 192.0.2.3")
	up.set(func(f *fakeUpstream) { f.nxdomain["gone.cdn.vendor.example."] = true })
	cfg := baseConfig(up.addr)
	cfg.Cache.MinTTL, cfg.Cache.MaxTTL, cfg.Cache.NegativeTTL = 10*time.Second, time.Hour, 20*time.Second
	ts := startServer(t, cfg, Options{})
	ttl := func(m *dns.Msg) uint32 {
		if len(m.Answer) > 0 {
			return m.Answer[0].Header().Ttl
		}
		return m.Ns[0].Header().Ttl
	}
	tests := []struct {
		name     string
		qname    string
		advance  time.Duration // before the second query
		wantTTL  uint32        // of the second answer
		wantSent int           // upstream queries for both
	}{
		{"hit counts the TTL down", "a.cdn.vendor.example.", 100 * time.Second, 200, 1},
		{"expired entry asks again", "a.cdn.vendor.example.", 301 * time.Second, 300, 2},
		{"min clamp", "short.cdn.vendor.example.", 5 * time.Second, 5, 1},
		{"max clamp", "long.cdn.vendor.example.", 1800 * time.Second, 1800, 1},
		{"negative answer cached for min(SOA, negative_ttl)", "gone.cdn.vendor.example.", 15 * time.Second, 5, 1},
		{"negative answer expires", "gone.cdn.vendor.example.", 21 * time.Second, 20, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts.cache.flush()
			before := up.count()
			ts.ask(t, query{name: tc.qname})
			ts.clock.Advance(tc.advance)
			r := ts.ask(t, query{name: tc.qname})
			if got := ttl(r); got != tc.wantTTL {
				t.Errorf("TTL = %d, want %d", got, tc.wantTTL)
			}
			if got := up.count() - before; got != tc.wantSent {
				t.Errorf("upstream asked %d times, want %d", got, tc.wantSent)
			}
		})
	}
}

func TestPrefetchPopularNames(t *testing.T) {
	up := newFakeUpstream(t)
	up.add("a.cdn.vendor.example. 100 IN A 192.0.2.3", "b.cdn.vendor.example. 100 IN A 192.0.2.4")
	cfg := baseConfig(up.addr)
	cfg.Cache.Prefetch, cfg.Cache.PrefetchMinHits = true, 3
	ts := startServer(t, cfg, Options{})
	for _, n := range []string{"a.cdn.vendor.example.", "b.cdn.vendor.example."} {
		ts.ask(t, query{name: n})
	}
	for range 3 { // a is popular, b is not
		ts.ask(t, query{name: "a.cdn.vendor.example."})
	}
	ts.clock.Advance(95 * time.Second) // less than a tenth of the TTL left
	before := up.count()
	ts.ask(t, query{name: "a.cdn.vendor.example."})
	ts.ask(t, query{name: "b.cdn.vendor.example."})
	clocktest.WaitFor(t, "prefetch", func() bool { return metricValue(ts.metrics.prefetches) == 1 })
	if got := up.count() - before; got != 1 {
		t.Errorf("upstream asked %d times, want 1 (the prefetch of the popular name)", got)
	}
	ts.clock.Advance(10 * time.Second) // past the first answer's TTL
	before = up.count()
	r := ts.ask(t, query{name: "a.cdn.vendor.example."})
	if up.count() != before || r.Answer[0].Header().Ttl != 90 {
		t.Errorf("after expiry: upstream asked %d, TTL %d; want the prefetched answer (TTL 90) from the cache",
			up.count()-before, r.Answer[0].Header().Ttl)
	}
}

// TestOddPackets calls the request path directly with packets a client library will not
// send.
func TestOddPackets(t *testing.T) {
	cfg := baseConfig("127.0.0.1:9") // never reached: nothing here is forwarded
	ts := startServer(t, cfg, Options{})
	mk := func(fn func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("update.vendor.example.", dns.TypeA)
		m.Id = 999
		fn(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name  string
		pkt   []byte
		from  netip.Addr
		rcode int // -1: silence
	}{
		{"too short", []byte{1, 2, 3}, clinicalClient, -1},
		{"a response", mk(func(m *dns.Msg) { m.Response = true }), clinicalClient, -1},
		{"garbage after a header", append(mk(func(*dns.Msg) {})[:12], 0xff, 0xff, 0xff), clinicalClient, dns.RcodeFormatError},
		{"garbage from a stranger", append(mk(func(*dns.Msg) {})[:12], 0xff, 0xff, 0xff), strangerClient, -1},
		{"opcode NOTIFY", mk(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), clinicalClient, dns.RcodeNotImplemented},
		{"opcode UPDATE", mk(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), clinicalClient, dns.RcodeNotImplemented},
		{"no question", mk(func(m *dns.Msg) { m.Question = nil }), clinicalClient, dns.RcodeFormatError},
		{"two questions", mk(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), clinicalClient, dns.RcodeFormatError},
		{"class CHAOS", mk(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), clinicalClient, dns.RcodeRefused},
		{"AXFR", mk(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR }), clinicalClient, dns.RcodeNotImplemented},
		{"EDNS version 1", mk(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), clinicalClient, dns.RcodeBadVers},
		{"huge name", mk(func(m *dns.Msg) {
			m.Question[0].Name = strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + "."
		}), clinicalClient, dns.RcodeNameError},
		{"escaped name", mk(func(m *dns.Msg) { m.Question[0].Name = `update\.vendor.example.` }), clinicalClient, dns.RcodeNameError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, r := ts.answer(tc.pkt, tc.from, false, nil)
			if r != nil {
				t.Fatalf("answer wants to forward %q", r.name)
			}
			if tc.rcode < 0 {
				if resp != nil {
					t.Errorf("answered %d bytes, want silence", len(resp))
				}
				return
			}
			m := new(dns.Msg)
			if err := m.Unpack(resp); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if m.Rcode != tc.rcode || m.Id != 999 || !m.Response {
				t.Errorf("answer rcode %s id %d QR %v, want %s id 999 QR", dns.RcodeToString[m.Rcode], m.Id, m.Response, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestQueryLogPanelAndEvents(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	rec := &recorder{}
	ts := startServer(t, baseConfig(up.addr), Options{Assets: rec, Events: rec})
	for range 3 {
		ts.ask(t, query{name: "www.example.com."})
	}
	ts.ask(t, query{from: devicesClient, name: "www.example.com."})
	ts.ask(t, query{from: devicesClient, name: "telemetry.example."})
	ts.ask(t, query{name: "update.vendor.example."})
	ts.ask(t, query{from: strangerClient, name: "update.vendor.example."})

	d := ts.Status(10, 3)
	if diff := cmp.Diff(DecisionCounts{Allowed: 1, Blocked: 5, Refused: 1}, d.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	var top []string
	for _, b := range d.TopBlocked {
		var who []string
		for _, dv := range b.Devices {
			who = append(who, dv.Who()+"×"+itoa(dv.Count))
		}
		top = append(top, b.Name+" "+itoa(b.Count)+" "+strings.Join(who, ","))
	}
	want := []string{"www.example.com 4 printer-3×3,127.0.0.3×1", "telemetry.example 1 127.0.0.3×1"}
	if diff := cmp.Diff(want, top); diff != "" {
		t.Errorf("top blocked (-want +got):\n%s", diff)
	}
	var recent []string
	for _, e := range d.Recent {
		recent = append(recent, e.Who()+" "+e.Name+" "+e.Type+" "+e.Decision.String()+" "+e.Rcode)
	}
	want = []string{
		"127.0.0.9 update.vendor.example A refused REFUSED",
		"printer-3 update.vendor.example A allowed NOERROR",
		"127.0.0.3 telemetry.example A blocked NXDOMAIN",
	}
	if diff := cmp.Diff(want, recent); diff != "" {
		t.Errorf("recent (-want +got):\n%s", diff)
	}

	ts.clock.Advance(ts.cfg.QueryLog.EventWindow)
	clocktest.WaitFor(t, "events", func() bool { _, b := rec.got(); return len(b) == 3 })
	_, bursts := rec.got()
	var got []string
	for _, b := range bursts {
		got = append(got, b.Segment+" "+b.Client.String()+" "+b.Asset+" "+b.Name+" "+itoa(b.Count))
	}
	want = []string{
		"clinical 127.0.0.1 printer-3 www.example.com 3",
		"devices 127.0.0.3  telemetry.example 1",
		"devices 127.0.0.3  www.example.com 1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blocked bursts (-want +got):\n%s", diff)
	}
}

func TestTCPLimits(t *testing.T) {
	cfg := baseConfig("127.0.0.1:9")
	cfg.Limits.TCPMaxQueries, cfg.Limits.TCPMaxConnections = 2, 1
	cfg.Limits.TCPIdleTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg, Options{})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	send := func(c net.Conn) error {
		m := new(dns.Msg)
		m.SetQuestion("repo.vendor.example.", dns.TypeA)
		b, _ := m.Pack()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
			return err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(l[:])))
		return err
	}
	c := dial()
	for i := range 2 {
		if err := send(c); err != nil {
			t.Fatalf("query %d on the first connection: %v", i+1, err)
		}
	}
	if err := send(c); err == nil {
		t.Error("a third query on one connection was answered; want the connection closed after tcp_max_queries")
	}
	clocktest.WaitFor(t, "connection slot freed", func() bool { return metricValue(ts.metrics.tcpConns) == 0 })

	c = dial()
	if err := send(c); err != nil {
		t.Fatal(err)
	}
	if err := send(dial()); err == nil {
		t.Error("a second connection was served; want it closed at tcp_max_connections 1")
	}
	// The idle connection is closed by the server after tcp_idle_timeout (real time: the
	// kernel's deadline).
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection read = %v, want EOF from the server closing it", err)
	}
}

func TestMetricsCountDecisions(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	ts := startServer(t, baseConfig(up.addr), Options{})
	ts.ask(t, query{name: "update.vendor.example."})
	ts.ask(t, query{name: "update.vendor.example."})
	ts.ask(t, query{name: "www.example.com."})
	ts.ask(t, query{name: "repo.vendor.example."})
	ts.ask(t, query{from: strangerClient, name: "x.example."})
	got := map[string]float64{
		"allowed/NOERROR":   metricValue(ts.metrics.queries.WithLabelValues("allowed", "NOERROR")),
		"blocked/NXDOMAIN":  metricValue(ts.metrics.queries.WithLabelValues("blocked", "NXDOMAIN")),
		"rewritten/NOERROR": metricValue(ts.metrics.queries.WithLabelValues("rewritten", "NOERROR")),
		"refused/REFUSED":   metricValue(ts.metrics.queries.WithLabelValues("refused", "REFUSED")),
		"cache hits":        metricValue(ts.metrics.cacheHits),
		"cache misses":      metricValue(ts.metrics.cacheMisses),
	}
	want := map[string]float64{"allowed/NOERROR": 2, "blocked/NXDOMAIN": 1, "rewritten/NOERROR": 1, "refused/REFUSED": 1,
		"cache hits": 1, "cache misses": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if n := metricCount(ts.metrics.latency); n != 4 {
		t.Errorf("latency histogram has %d series, want one per decision", n)
	}
}

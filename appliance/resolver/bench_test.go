package resolver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The hot path benchmarks: what a UDP reader does for one packet that is answered
// without the network (blocked, rewritten, an allowed name in the cache), and the same
// through a real loopback socket. They report allocs/op so that a regression in
// per-packet garbage shows; the peer comparison (CPU per query against Unbound) is
// test/bench/dns.

// benchServer is a resolver with baseConfig's policy on the wall clock, its cache
// holding an answer for update.vendor.example A (no upstream is ever asked).
func benchServer(b *testing.B) *Server {
	b.Helper()
	cfg := baseConfig("127.0.0.1:9")
	cfg.Cache.MaxTTL = 24 * time.Hour
	cfg.QueryLog.Log = "blocked"
	cfg.QueryLog.LogRate = 10
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	up := new(dns.Msg)
	up.SetQuestion("update.vendor.example.", dns.TypeA)
	up.Response, up.RecursionAvailable = true, true
	up.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "update.vendor.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 3600},
			Target: "a1.cdn.vendor.example."},
		&dns.A{Hdr: dns.RR_Header{Name: "a1.cdn.vendor.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
			A: net.IPv4(192, 0, 2, 1).To4()},
	}
	up.SetEdns0(1232, false)
	s.cache.put(cacheKey{name: "update.vendor.example", qtype: dns.TypeA}, up, time.Now())
	return s
}

// benchQueries are the packets of the hot path, as a stub resolver sends them.
var benchQueries = []struct {
	name  string
	qname string
	qtype uint16
	edns  bool
}{
	{"blocked", "www.example.com.", dns.TypeA, false},
	{"blocked-edns", "tracker.example.net.", dns.TypeAAAA, true},
	{"rewritten", "repo.vendor.example.", dns.TypeA, false},
	{"rewritten-nodata", "repo.vendor.example.", dns.TypeMX, true},
	{"cached", "update.vendor.example.", dns.TypeA, true},
}

func packQuery(b *testing.B, qname string, qtype uint16, edns bool) []byte {
	b.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Id = 0x4242
	if edns {
		m.SetEdns0(1232, false)
	}
	pkt, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	return pkt
}

// BenchmarkAnswer is the per-packet work of a UDP reader: parse, policy, answer, pack,
// metrics and query log, with no socket.
func BenchmarkAnswer(b *testing.B) {
	s := benchServer(b)
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			pkt := packQuery(b, q.qname, q.qtype, q.edns)
			out := make([]byte, s.udpSize)
			if resp, r := s.answer(pkt, clinicalClient, false, out); resp == nil || r != nil {
				b.Fatalf("answer(%s) = %d bytes, forwarded %v: want a local answer", q.qname, len(resp), r != nil)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.answer(pkt, clinicalClient, false, out)
			}
		})
	}
}

// BenchmarkServeUDP sends the hot-path queries over loopback UDP to a running server
// and waits for each answer: one client, one query in flight, so ns/op is a round trip
// (client included) and allocs/op counts both sides.
func BenchmarkServeUDP(b *testing.B) {
	s := benchServer(b)
	listenAndRun(b, s)
	addr, err := netip.ParseAddrPort(s.Addrs()[0])
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var pkts [][]byte
	for _, q := range benchQueries {
		pkts = append(pkts, packQuery(b, q.qname, q.qtype, q.edns))
	}
	buf := make([]byte, 2048)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Write(pkts[i%len(pkts)]); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

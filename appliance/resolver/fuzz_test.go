package resolver

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRequestPath feeds arbitrary packets to the request path, as UDP and TCP from a
// client in a segment and from a stranger. Allowed names get an upstream answer made
// from the question. Invariant: it never panics, and any answer parses, has QR set,
// carries the query's ID, and over UDP fits the size the query allows (at most our
// buffer size).
func FuzzRequestPath(f *testing.F) {
	for _, seed := range []func(m *dns.Msg){
		func(m *dns.Msg) { m.SetQuestion("update.vendor.example.", dns.TypeA) },
		func(m *dns.Msg) { m.SetQuestion("dl.vendor.example.", dns.TypeAAAA); m.SetEdns0(4096, true) },
		func(m *dns.Msg) { m.SetQuestion("repo.vendor.example.", dns.TypeAAAA) },
		func(m *dns.Msg) { m.SetQuestion("www.example.com.", dns.TypeMX) },
		func(m *dns.Msg) { m.SetQuestion("use-application-dns.net.", dns.TypeA) },
		func(m *dns.Msg) { m.SetQuestion("a.cdn.vendor.example.", dns.TypeANY); m.SetEdns0(100, false) },
		func(m *dns.Msg) {
			m.SetQuestion("a.example.", dns.TypeA)
			m.Question = append(m.Question, m.Question[0])
		},
		func(m *dns.Msg) { m.SetNotify("update.vendor.example.") },
	} {
		m := new(dns.Msg)
		seed(m)
		b, _ := m.Pack()
		f.Add(b, false, true)
		f.Add(b, true, false)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1}, false, true) // compression loop
	f.Add([]byte{}, false, true)

	s, err := New(baseConfig("127.0.0.1:9"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, tcp, inSegment bool) {
		from := strangerClient
		if inSegment {
			from = clinicalClient
		}
		resp, r := s.answer(pkt, from, tcp, nil)
		if r != nil {
			if up, err := scrub(r.name, r.qtype, r.do, fakeAnswer(r)); err == nil {
				resp = s.allowed(r, up, nil)
			} else {
				resp = s.local(r, dns.RcodeServerFailure, nil)
			}
		}
		if resp == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(resp); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if !m.Response || len(pkt) < 2 || m.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatalf("answer QR %v ID %d to a query with ID bytes %x", m.Response, m.Id, pkt[:min(2, len(pkt))])
		}
		if !tcp && len(resp) > s.udpSize {
			t.Fatalf("UDP answer of %d bytes, buffer %d", len(resp), s.udpSize)
		}
		if !tcp && r != nil && len(resp) > r.maxSize {
			t.Fatalf("UDP answer of %d bytes, client allows %d", len(resp), r.maxSize)
		}
	})
}

// fakeAnswer is an upstream answer to r: a CNAME and many addresses, enough to need
// truncation.
func fakeAnswer(r *request) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(r.name), r.qtype)
	m.Response = true
	target := "edge.akamai.test."
	m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: dns.Fqdn(r.name), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: target})
	for i := range 80 {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).AsSlice()})
	}
	return m
}

// FuzzParseList: ParseList never panics, and what it accepts round-trips: the entries
// written out parse to the same set, in canonical form.
func FuzzParseList(f *testing.F) {
	f.Add("update.vendor.example\n*.cdn.vendor.example # c\n")
	f.Add("# only a comment\n\n")
	f.Add("Bücher.example\n")
	f.Add("*.*.x\n")
	f.Add("a..b\n\x00\n")
	f.Fuzz(func(t *testing.T, in string) {
		set, err := ParseList(strings.NewReader(in), "fuzz.txt")
		if err != nil {
			return
		}
		entries := set.Entries()
		slices.Sort(entries)
		again, err := ParseList(strings.NewReader(strings.Join(entries, "\n")), "again.txt")
		if err != nil {
			t.Fatalf("entries %q of an accepted list do not parse again: %v", entries, err)
		}
		back := again.Entries()
		slices.Sort(back)
		if !slices.Equal(entries, back) {
			t.Fatalf("round trip changed the list: %q -> %q", entries, back)
		}
		for _, e := range entries {
			if e != strings.ToLower(e) || strings.HasSuffix(e, ".") {
				t.Fatalf("entry %q not canonical", e)
			}
		}
	})
}

package resolver

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

// unpackBoth parses pkt with unpackQuery and with dns.Msg.Unpack; ok reports whether
// unpackQuery took it, and then the two messages must be equal.
func unpackBoth(t *testing.T, pkt []byte) (ok bool) {
	t.Helper()
	var fast, slow dns.Msg
	var q [1]dns.Question
	var opt dns.OPT
	var extra [1]dns.RR
	if !unpackQuery(&fast, pkt, &q, &opt, &extra) {
		return false
	}
	if err := slow.Unpack(pkt); err != nil {
		t.Fatalf("unpackQuery took %x, which Unpack refuses: %v", pkt, err)
	}
	if !reflect.DeepEqual(&fast, &slow) {
		t.Fatalf("unpackQuery(%x):\n%+v\nUnpack:\n%+v", pkt, &fast, &slow)
	}
	return true
}

func TestUnpackQuery(t *testing.T) {
	query := func(name string, qtype uint16, edns, do bool, edit func(*dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Id = 0xbeef
		if edns {
			m.SetEdns0(1232, do)
		}
		if edit != nil {
			edit(m)
		}
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return pkt
	}
	tests := []struct {
		name string
		pkt  []byte
		fast bool
	}{
		{"plain A", query("update.vendor.example.", dns.TypeA, false, false, nil), true},
		{"EDNS with DO", query("Update.Vendor.example.", dns.TypeAAAA, true, true, nil), true},
		{"root", query(".", dns.TypeNS, false, false, nil), true},
		{"underscore and digits", query("_ldap._tcp.dc1.example.", dns.TypeSRV, true, false, nil), true},
		{"flags and opcode", query("a.example.", dns.TypeA, false, false, func(m *dns.Msg) {
			m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData, m.Opcode = true, true, true, dns.OpcodeNotify
		}), true},
		{"extended rcode bits", query("a.example.", dns.TypeA, true, false, func(m *dns.Msg) {
			m.IsEdns0().SetExtendedRcode(dns.RcodeBadVers)
		}), true},
		{"EDNS version 1", query("a.example.", dns.TypeA, true, false, func(m *dns.Msg) { m.IsEdns0().SetVersion(1) }), true},
		{"EDNS option (Unpack)", query("a.example.", dns.TypeA, true, false, func(m *dns.Msg) {
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}), false},
		{"escaped name (Unpack)", query(`a\.b.example.`, dns.TypeA, false, false, nil), false},
		{"two questions (Unpack)", query("a.example.", dns.TypeA, false, false, func(m *dns.Msg) {
			m.Question = append(m.Question, m.Question[0])
		}), false},
		{"an answer record (Unpack)", query("a.example.", dns.TypeA, false, false, func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}}}
		}), false},
		{"trailing byte (Unpack)", append(query("a.example.", dns.TypeA, false, false, nil), 0), false},
		{"cut short (Unpack)", query("a.example.", dns.TypeA, false, false, nil)[:20], false},
		{"header only (Unpack)", query("a.example.", dns.TypeA, false, false, nil)[:12], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unpackBoth(t, tc.pkt); got != tc.fast {
				t.Errorf("unpackQuery took it: %v, want %v", got, tc.fast)
			}
		})
	}
}

// FuzzUnpackQuery: whatever unpackQuery takes, dns.Msg.Unpack takes too and reads the
// same message.
func FuzzUnpackQuery(f *testing.F) {
	for _, q := range benchQueries {
		m := new(dns.Msg)
		m.SetQuestion(q.qname, q.qtype)
		if q.edns {
			m.SetEdns0(1232, true)
		}
		pkt, _ := m.Pack()
		f.Add(pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) { unpackBoth(t, pkt) })
}

func TestAnswerAddr(t *testing.T) {
	tests := []struct {
		name string
		rr   string
		want netip.Addr
	}{
		{"A", "a.test. 60 IN A 192.0.2.1", netip.MustParseAddr("192.0.2.1")},
		{"AAAA", "a.test. 60 IN AAAA 2001:db8::1", netip.MustParseAddr("2001:db8::1")},
		{"AAAA mapped stays mapped", "a.test. 60 IN AAAA ::ffff:192.0.2.1", netip.MustParseAddr("::ffff:192.0.2.1")},
		{"CNAME has none", "a.test. 60 IN CNAME b.test.", netip.Addr{}},
		{"TXT has none", `a.test. 60 IN TXT "192.0.2.1"`, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr, err := dns.NewRR(tt.rr)
			if err != nil {
				t.Fatal(err)
			}
			if got := AnswerAddr(rr); got != tt.want {
				t.Errorf("AnswerAddr(%s) = %v, want %v", tt.rr, got, tt.want)
			}
		})
	}
	if got := AnswerAddr(&dns.A{}); got.IsValid() {
		t.Errorf("AnswerAddr of an A record without an address = %v, want the zero Addr", got)
	}
}

package resolver

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// sections renders a message's three sections as "owner TYPE" lines (CNAME and DNAME
// with their targets), for comparing what scrub kept.
func sections(m *dns.Msg) [3][]string {
	var out [3][]string
	for i, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			line := rr.Header().Name + " " + dns.TypeToString[rr.Header().Rrtype]
			switch v := rr.(type) {
			case *dns.CNAME:
				line += " " + v.Target
			case *dns.DNAME:
				line += " " + v.Target
			case *dns.RRSIG:
				line += " " + dns.TypeToString[v.TypeCovered]
			}
			out[i] = append(out[i], line)
		}
	}
	return out
}

// upstreamMsg is an upstream answer to (name, qtype) with the given records (zone file
// lines) in its three sections.
func upstreamMsg(t testing.TB, name string, qtype uint16, rcode int, answer, ns, extra []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.Rcode = true, rcode
	for _, l := range answer {
		m.Answer = append(m.Answer, mustRR(t, l))
	}
	for _, l := range ns {
		m.Ns = append(m.Ns, mustRR(t, l))
	}
	for _, l := range extra {
		m.Extra = append(m.Extra, mustRR(t, l))
	}
	m.SetEdns0(1232, false)
	return m
}

// chainAnswer is a CNAME chain of links links from c0.cdn.vendor.example to cN and an A
// record there.
func chainAnswer(links int) []string {
	var out []string
	for i := range links {
		out = append(out, "c"+itoa(i)+".cdn.vendor.example. 300 IN CNAME c"+itoa(i+1)+".cdn.vendor.example.")
	}
	return append(out, "c"+itoa(links)+".cdn.vendor.example. 300 IN A 192.0.2.50")
}

func TestScrub(t *testing.T) {
	const (
		soaVendor = "vendor.example. 900 IN SOA ns.vendor.example. host.vendor.example. 1 3600 600 86400 30"
		soaEvil   = "evil.test. 900 IN SOA ns.evil.test. host.evil.test. 1 3600 600 86400 30"
		soaCDN    = "unlisted-cdn.test. 900 IN SOA ns.unlisted-cdn.test. host.unlisted-cdn.test. 1 3600 600 86400 30"
		nsEvil    = "vendor.example. 300 IN NS ns.evil.test."
		glueEvil  = "ns.evil.test. 300 IN A 203.0.113.9"
		opt       = ". OPT"
		dname     = "vendor-old.example. 300 IN DNAME vendor.example."
	)
	// What the DNAME cases keep: the DNAME, its CNAME, the address.
	dnameChain := [3][]string{{"vendor-old.example. DNAME vendor.example.",
		"update.vendor-old.example. CNAME update.vendor.example.", "update.vendor.example. A"}, nil, nil}
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		do      bool
		rcode   int
		answer  []string
		ns      []string
		extra   []string
		want    [3][]string
		wantErr string // errBadAnswer with this text
	}{
		{name: "positive answer: authority and additional dropped", qname: "a.cdn.vendor.example.", qtype: dns.TypeA,
			answer: []string{"a.cdn.vendor.example. 300 IN A 192.0.2.2"}, ns: []string{nsEvil}, extra: []string{glueEvil},
			want: [3][]string{{"a.cdn.vendor.example. A"}, nil, nil}},
		{name: "records off the chain dropped", qname: "dl.vendor.example.", qtype: dns.TypeA,
			answer: []string{
				"dl.vendor.example. 300 IN A 203.0.113.1", // beside its own CNAME
				"dl.vendor.example. 300 IN CNAME x.unlisted-cdn.test.",
				"dl.vendor.example. 300 IN CNAME y.unlisted-cdn.test.", // a second CNAME
				"x.unlisted-cdn.test. 300 IN A 192.0.2.4",
				"x.unlisted-cdn.test. 300 IN TXT \"not asked\"",
				"injected.example. 300 IN A 203.0.113.66",
			},
			want: [3][]string{{"dl.vendor.example. CNAME x.unlisted-cdn.test.", "x.unlisted-cdn.test. A"}, nil, nil}},
		{name: "NXDOMAIN keeps the SOA in bailiwick only", qname: "gone.cdn.vendor.example.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaEvil, nsEvil, soaVendor}, extra: []string{glueEvil},
			want: [3][]string{nil, {"vendor.example. SOA"}, nil}},
		{name: "NXDOMAIN with only a foreign SOA keeps none", qname: "gone.cdn.vendor.example.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaEvil},
			want: [3][]string{nil, nil, nil}},
		{name: "NODATA at the chain's end: the SOA of the last name's zone", qname: "chain.cdn.vendor.example.", qtype: dns.TypeAAAA,
			answer: []string{"chain.cdn.vendor.example. 300 IN CNAME x.unlisted-cdn.test."},
			ns:     []string{soaVendor, soaCDN},
			want:   [3][]string{{"chain.cdn.vendor.example. CNAME x.unlisted-cdn.test."}, {"unlisted-cdn.test. SOA"}, nil}},
		{name: "DNSSEC proofs of the SOA's zone kept with DO", qname: "gone.cdn.vendor.example.", qtype: dns.TypeA, do: true,
			rcode: dns.RcodeNameError,
			ns: []string{soaVendor,
				"vendor.example. 900 IN RRSIG SOA 13 2 900 20300101000000 20200101000000 1 vendor.example. AAAA",
				"f.cdn.vendor.example. 900 IN NSEC h.cdn.vendor.example. A RRSIG NSEC",
				"f.cdn.vendor.example. 900 IN RRSIG NSEC 13 4 900 20300101000000 20200101000000 1 vendor.example. AAAA",
				"a.evil.test. 900 IN NSEC z.evil.test. A",
				nsEvil},
			want: [3][]string{nil, {"vendor.example. SOA", "vendor.example. RRSIG SOA",
				"f.cdn.vendor.example. NSEC", "f.cdn.vendor.example. RRSIG NSEC"}, nil}},
		{name: "RRSIGs of the chain kept with DO", qname: "dl.vendor.example.", qtype: dns.TypeA, do: true,
			answer: []string{
				"dl.vendor.example. 300 IN CNAME x.unlisted-cdn.test.",
				"dl.vendor.example. 300 IN RRSIG CNAME 13 3 300 20300101000000 20200101000000 1 vendor.example. AAAA",
				"x.unlisted-cdn.test. 300 IN A 192.0.2.4",
				"x.unlisted-cdn.test. 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 1 unlisted-cdn.test. AAAA",
				"x.unlisted-cdn.test. 300 IN RRSIG TXT 13 3 300 20300101000000 20200101000000 1 unlisted-cdn.test. AAAA",
			},
			want: [3][]string{{"dl.vendor.example. CNAME x.unlisted-cdn.test.", "dl.vendor.example. RRSIG CNAME",
				"x.unlisted-cdn.test. A", "x.unlisted-cdn.test. RRSIG A"}, nil, nil}},
		{name: "DNAME kept with the upstream's CNAME", qname: "update.vendor-old.example.", qtype: dns.TypeA,
			answer: []string{
				dname,
				"update.vendor-old.example. 0 IN CNAME update.vendor.example.",
				"update.vendor.example. 300 IN A 192.0.2.1",
			},
			want: dnameChain},
		{name: "DNAME without its CNAME: synthesized", qname: "update.vendor-old.example.", qtype: dns.TypeA,
			answer: []string{
				dname,
				"update.vendor.example. 300 IN A 192.0.2.1",
			},
			want: dnameChain},
		{name: "DNAME with a CNAME to elsewhere: the DNAME wins", qname: "update.vendor-old.example.", qtype: dns.TypeA,
			answer: []string{
				dname,
				"update.vendor-old.example. 300 IN CNAME evil.test.",
				"evil.test. 300 IN A 203.0.113.5",
				"update.vendor.example. 300 IN A 192.0.2.1",
			},
			want: dnameChain},
		{name: "a CNAME query follows no chain", qname: "dl.vendor.example.", qtype: dns.TypeCNAME,
			answer: []string{"dl.vendor.example. 300 IN CNAME dl.vendor.example.", "other.example. 300 IN CNAME x.example."},
			want:   [3][]string{{"dl.vendor.example. CNAME dl.vendor.example."}, nil, nil}},
		{name: "chain of 11 links served whole", qname: "c0.cdn.vendor.example.", qtype: dns.TypeA,
			answer: chainAnswer(11), want: [3][]string{chainLines(11), nil, nil}},
		{name: "chain of 12 links refused", qname: "c0.cdn.vendor.example.", qtype: dns.TypeA,
			answer: chainAnswer(12), wantErr: "longer than 11 links"},
		{name: "CNAME loop refused", qname: "loop.cdn.vendor.example.", qtype: dns.TypeA,
			answer: []string{"loop.cdn.vendor.example. 300 IN CNAME b.cdn.vendor.example.",
				"b.cdn.vendor.example. 300 IN CNAME LOOP.cdn.vendor.example."},
			wantErr: "CNAME loop at loop.cdn.vendor.example"},
		{name: "CNAME to itself refused", qname: "self.cdn.vendor.example.", qtype: dns.TypeAAAA,
			answer:  []string{"self.cdn.vendor.example. 300 IN CNAME self.cdn.vendor.example."},
			wantErr: "CNAME loop"},
		{name: "DNAME making a name too long refused", qname: strings.Repeat(strings.Repeat("a", 60)+".", 3) + "x.example.",
			qtype: dns.TypeA, answer: []string{"x.example. 300 IN DNAME " + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".example."},
			wantErr: "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := upstreamMsg(t, tc.qname, tc.qtype, tc.rcode, tc.answer, tc.ns, tc.extra)
			before := up.String()
			got, err := scrub(canonical(tc.qname), tc.qtype, tc.do, up)
			if up.String() != before {
				t.Errorf("scrub modified the upstream answer")
			}
			if tc.wantErr != "" {
				if !errors.Is(err, errBadAnswer) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("scrub = %v, want errBadAnswer with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("scrub: %v", err)
			}
			tc.want[2] = append(tc.want[2], opt)
			if diff := cmp.Diff(tc.want, sections(got)); diff != "" {
				t.Errorf("scrubbed sections [answer, authority, additional] (-want +got):\n%s", diff)
			}
			if got.Rcode != tc.rcode || got.Id != up.Id || len(got.Question) != 1 {
				t.Errorf("header: rcode %d id %d question %v, want the upstream's", got.Rcode, got.Id, got.Question)
			}
		})
	}
}

// chainLines is chainAnswer(links) as sections renders it.
func chainLines(links int) []string {
	var out []string
	for _, l := range chainAnswer(links) {
		f := strings.Fields(l) // owner TTL class type data
		out = append(out, strings.TrimSuffix(f[0]+" "+f[3]+" "+f[4], " 192.0.2.50"))
	}
	return out
}

// FuzzScrub feeds arbitrary upstream answers to scrub. Invariant: it never panics, and
// what it keeps is the chain from the question name (each CNAME owned by the previous
// link's target, at most maxChainLinks of them), an authority section of SOA and DNSSEC
// proof records only, and no additional record but OPT.
func FuzzScrub(f *testing.F) {
	seeds := []*dns.Msg{
		upstreamMsg(f, "dl.vendor.example.", dns.TypeA, 0, []string{
			"dl.vendor.example. 300 IN CNAME x.unlisted-cdn.test.", "x.unlisted-cdn.test. 300 IN A 192.0.2.4"},
			[]string{"vendor.example. 300 IN NS ns.evil.test."}, []string{"ns.evil.test. 300 IN A 203.0.113.9"}),
		upstreamMsg(f, "update.vendor-old.example.", dns.TypeA, 0, []string{
			"vendor-old.example. 300 IN DNAME vendor.example.", "update.vendor.example. 300 IN A 192.0.2.1"}, nil, nil),
		upstreamMsg(f, "loop.example.", dns.TypeAAAA, 3, []string{
			"loop.example. 300 IN CNAME b.example.", "b.example. 300 IN CNAME loop.example."},
			[]string{"example. 900 IN SOA ns.example. host.example. 1 3600 600 86400 30"}, nil),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, do bool) {
		up := new(dns.Msg)
		if up.Unpack(pkt) != nil || len(up.Question) != 1 {
			return
		}
		q := up.Question[0]
		name := canonical(q.Name)
		out, err := scrub(name, q.Qtype, do, up)
		if err != nil {
			return
		}
		cur, links := name, 0
		for _, rr := range out.Answer {
			switch v := rr.(type) {
			case *dns.CNAME:
				if q.Qtype == dns.TypeCNAME {
					continue
				}
				if !sameName(v.Hdr.Name, cur) {
					t.Fatalf("CNAME %v is not owned by the chain's name %q", v, cur)
				}
				cur, links = canonical(v.Target), links+1
			}
		}
		if links > maxChainLinks {
			t.Fatalf("chain of %d links kept", links)
		}
		for _, rr := range out.Ns {
			switch rr.Header().Rrtype {
			case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeRRSIG:
			default:
				t.Fatalf("authority keeps %v", rr)
			}
		}
		for _, rr := range out.Extra {
			if rr.Header().Rrtype != dns.TypeOPT {
				t.Fatalf("additional keeps %v", rr)
			}
		}
	})
}

package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/clock/clocktest"
)

// vendorZone is what the fake upstream knows.
var vendorZone = []string{
	"update.vendor.example. 300 IN A 192.0.2.1",
	"update.vendor.example. 300 IN AAAA 2001:db8::1",
	"a.cdn.vendor.example. 300 IN A 192.0.2.2",
	"cdn.vendor.example. 300 IN A 192.0.2.9",
	"bad.cdn.vendor.example. 300 IN A 192.0.2.66",
	"dl.vendor.example. 300 IN CNAME dl.vendor.example.edge.akamai.test.",
	"dl.vendor.example.edge.akamai.test. 20 IN A 192.0.2.3",
	"evil.example. 300 IN CNAME update.vendor.example.",
	"chain.cdn.vendor.example. 300 IN CNAME x.unlisted-cdn.test.",
	"x.unlisted-cdn.test. 300 IN A 192.0.2.4",
	"doh.cdn.vendor.example. 300 IN CNAME dns.google.",
	"dns.google. 300 IN A 8.8.8.8",
	"dns.quad9.net. 300 IN A 9.9.9.9",
	"www.quad9.net. 300 IN A 192.0.2.5",
	"fw.printer.example. 300 IN A 192.0.2.6",
	"www.example.com. 300 IN A 192.0.2.7",
	"use-application-dns.net. 300 IN A 192.0.2.8",
}

func TestPolicyAnswers(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	ts := startServer(t, baseConfig(up.addr), Options{})
	if h := ts.Health(); len(h) > 0 {
		t.Fatalf("Health = %v, want none", h)
	}

	const soa = "SOA"
	tests := []struct {
		name      string
		q         query
		rcode     int
		answer    []string
		ns        string // type of the authority record, "" for none
		forwarded bool   // whether the upstream is asked
	}{
		{"exact A", query{name: "update.vendor.example.", qtype: dns.TypeA}, dns.RcodeSuccess,
			[]string{"update.vendor.example. A 192.0.2.1"}, "", true},
		{"exact AAAA", query{name: "update.vendor.example.", qtype: dns.TypeAAAA}, dns.RcodeSuccess,
			[]string{"update.vendor.example. AAAA 2001:db8::1"}, "", true},
		{"wildcard matches below", query{name: "a.cdn.vendor.example."}, dns.RcodeSuccess,
			[]string{"a.cdn.vendor.example. A 192.0.2.2"}, "", true},
		{"wildcard does not match its bare parent", query{name: "cdn.vendor.example."}, dns.RcodeNameError, nil, soa, false},
		{"case-insensitive, question case kept", query{name: "UPDATE.Vendor.EXAMPLE."}, dns.RcodeSuccess,
			[]string{"update.vendor.example. A 192.0.2.1"}, "", true},
		{"not allowed is NXDOMAIN with SOA", query{name: "www.example.com."}, dns.RcodeNameError, nil, soa, false},
		{"rewrite A", query{name: "repo.vendor.example."}, dns.RcodeSuccess,
			[]string{"repo.vendor.example. A 10.20.0.1"}, "", false},
		{"rewrite AAAA", query{name: "repo.vendor.example.", qtype: dns.TypeAAAA}, dns.RcodeSuccess,
			[]string{"repo.vendor.example. AAAA fd00:20::1"}, "", false},
		{"rewrite wildcard", query{name: "eu.mirror.vendor.example."}, dns.RcodeSuccess,
			[]string{"eu.mirror.vendor.example. A 10.20.0.1"}, "", false},
		{"rewrite other type is NODATA", query{name: "repo.vendor.example.", qtype: dns.TypeMX}, dns.RcodeSuccess, nil, soa, false},
		{"rewrite unconfigured family is NODATA", query{from: devicesClient, name: "repo.vendor.example.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, nil, soa, false},
		{"rewrite per segment address", query{from: devicesClient, name: "repo.vendor.example."}, dns.RcodeSuccess,
			[]string{"repo.vendor.example. A 10.30.0.1"}, "", false},
		{"segment: another segment's allowlist does not apply", query{from: devicesClient, name: "update.vendor.example."},
			dns.RcodeNameError, nil, soa, false},
		{"segment: its own allowlist", query{from: devicesClient, name: "fw.printer.example."}, dns.RcodeSuccess,
			[]string{"fw.printer.example. A 192.0.2.6"}, "", true},
		{"unknown client is REFUSED", query{from: strangerClient, name: "update.vendor.example."}, dns.RcodeRefused, nil, "", false},
		{"CNAME chain from an allowed name is served", query{name: "dl.vendor.example."}, dns.RcodeSuccess,
			[]string{"dl.vendor.example. CNAME dl.vendor.example.edge.akamai.test.", "dl.vendor.example.edge.akamai.test. A 192.0.2.3"}, "", true},
		{"a disallowed name is not allowed by its CNAME target", query{name: "evil.example."}, dns.RcodeNameError, nil, soa, false},
		{"follow mode serves unlisted CNAME targets", query{name: "chain.cdn.vendor.example."}, dns.RcodeSuccess,
			[]string{"chain.cdn.vendor.example. CNAME x.unlisted-cdn.test.", "x.unlisted-cdn.test. A 192.0.2.4"}, "", true},
		{"strict mode blocks unlisted CNAME targets", query{from: strictClient, name: "chain.cdn.vendor.example."},
			dns.RcodeNameError, nil, soa, true},
		{"strict mode serves allowed CNAME target suffixes", query{from: strictClient, name: "dl.vendor.example."}, dns.RcodeSuccess,
			[]string{"dl.vendor.example. CNAME dl.vendor.example.edge.akamai.test.", "dl.vendor.example.edge.akamai.test. A 192.0.2.3"}, "", true},
		{"CNAME into a DoH name is blocked", query{name: "doh.cdn.vendor.example."}, dns.RcodeNameError, nil, soa, true},
		{"public DoH name blocked over an allowing wildcard", query{name: "dns.quad9.net."}, dns.RcodeNameError, nil, soa, false},
		{"other names under that wildcard allowed", query{name: "www.quad9.net."}, dns.RcodeSuccess,
			[]string{"www.quad9.net. A 192.0.2.5"}, "", true},
		{"block list beats allowlist wildcard", query{name: "bad.cdn.vendor.example."}, dns.RcodeNameError, nil, soa, false},
		{"canary is NXDOMAIN", query{name: "use-application-dns.net."}, dns.RcodeNameError, nil, soa, false},
		{"canary is NXDOMAIN in a sinkhole segment too", query{from: sinkClient, name: "use-application-dns.net."},
			dns.RcodeNameError, nil, soa, false},
		{"sinkhole A", query{from: sinkClient, name: "www.example.com."}, dns.RcodeSuccess,
			[]string{"www.example.com. A 0.0.0.0"}, "", false},
		{"sinkhole AAAA", query{from: sinkClient, name: "www.example.com.", qtype: dns.TypeAAAA}, dns.RcodeSuccess,
			[]string{"www.example.com. AAAA ::"}, "", false},
		{"blocked answer REFUSED", query{from: refuseClient, name: "www.example.com."}, dns.RcodeRefused, nil, "", false},
		{"blocked answer NODATA", query{from: nodataClient, name: "www.example.com."}, dns.RcodeSuccess, nil, soa, false},
		{"blocked over TCP", query{name: "www.example.com.", tcp: true}, dns.RcodeNameError, nil, soa, false},
		{"allowed over TCP", query{name: "a.cdn.vendor.example.", tcp: true}, dns.RcodeSuccess,
			[]string{"a.cdn.vendor.example. A 192.0.2.2"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts.cache.flush() // every case asks upstream afresh
			before := up.count()
			tc.q.id = 4242
			r := ts.ask(t, tc.q)
			if r.Id != 4242 {
				t.Errorf("answer ID = %d, want the client's 4242", r.Id)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if len(r.Question) != 1 || r.Question[0].Name != tc.q.name {
				t.Errorf("question = %v, want %q as asked", r.Question, tc.q.name)
			}
			if diff := cmp.Diff(tc.answer, answers(r)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			ns := ""
			if len(r.Ns) > 0 {
				ns = dns.TypeToString[r.Ns[0].Header().Rrtype]
				if soa, ok := r.Ns[0].(*dns.SOA); ok && r.Rcode == dns.RcodeNameError && (soa.Minttl != 60 || soa.Hdr.Ttl != 60) {
					t.Errorf("SOA of a blocked answer = %v, want TTL and minimum 60 (local_ttl)", soa)
				}
			}
			if ns != tc.ns {
				t.Errorf("authority = %q, want %q (%v)", ns, tc.ns, r.Ns)
			}
			if got := up.count() > before; got != tc.forwarded {
				t.Errorf("upstream asked = %v, want %v", got, tc.forwarded)
			}
		})
	}
}

func TestForwardingFreshIDsAndCase(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	cfg := baseConfig(up.addr)
	cfg.Cache.Size = 0
	ts := startServer(t, cfg, Options{})
	for range 6 {
		r := ts.ask(t, query{name: "uPdAtE.vendor.EXAMPLE.", id: 777})
		if r.Id != 777 || r.Question[0].Name != "uPdAtE.vendor.EXAMPLE." {
			t.Fatalf("answer id %d question %v, want the client's 777 and case", r.Id, r.Question)
		}
	}
	qs, ids, _ := up.questions()
	distinct := map[uint16]bool{}
	for i, q := range qs {
		if q.Name != "update.vendor.example." {
			t.Errorf("upstream asked %q, want the canonical lower-case name", q.Name)
		}
		distinct[ids[i]] = true
	}
	if len(qs) != 6 || len(distinct) < 5 {
		t.Errorf("upstream saw %d queries with IDs %v; want 6 with fresh random IDs", len(qs), ids)
	}
}

func TestTruncation(t *testing.T) {
	up := newFakeUpstream(t)
	var zone []string
	for i := range 100 {
		zone = append(zone, "big.cdn.vendor.example. 300 IN A 192.0.2."+itoa(i+1))
	}
	up.add(zone...)
	ts := startServer(t, baseConfig(up.addr), Options{})
	tests := []struct {
		name    string
		q       query
		maxSize int
		wantTC  bool
	}{
		{"UDP without EDNS: 512", query{name: "big.cdn.vendor.example."}, 512, true},
		{"UDP with EDNS 4096: our 1232", query{name: "big.cdn.vendor.example.", edns: 4096}, 1232, true},
		{"UDP with EDNS 800", query{name: "big.cdn.vendor.example.", edns: 800}, 800, true},
		{"UDP with EDNS below 512 counts as 512", query{name: "big.cdn.vendor.example.", edns: 100}, 512, true},
		{"TCP is never truncated", query{name: "big.cdn.vendor.example.", tcp: true}, 65535, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.ask(t, tc.q)
			r.Compress = true // as on the wire
			b, _ := r.Pack()
			if r.Truncated != tc.wantTC {
				t.Errorf("TC = %v, want %v", r.Truncated, tc.wantTC)
			}
			if len(b) > tc.maxSize {
				t.Errorf("answer is %d bytes, want at most %d", len(b), tc.maxSize)
			}
			if !tc.wantTC && len(r.Answer) != 100 {
				t.Errorf("answer has %d records, want all 100", len(r.Answer))
			}
		})
	}
}

func TestUpstreamTCPFallbackOnTruncation(t *testing.T) {
	up := newFakeUpstream(t)
	up.add("a.cdn.vendor.example. 300 IN A 192.0.2.2")
	up.set(func(f *fakeUpstream) { f.truncUDP["a.cdn.vendor.example."] = true })
	ts := startServer(t, baseConfig(up.addr), Options{})
	r := ts.ask(t, query{name: "a.cdn.vendor.example."})
	if diff := cmp.Diff([]string{"a.cdn.vendor.example. A 192.0.2.2"}, answers(r)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	_, _, nets := up.questions()
	if diff := cmp.Diff([]string{"udp", "tcp"}, nets[len(nets)-2:]); diff != "" {
		t.Errorf("upstream transports (-want +got):\n%s", diff)
	}
}

func TestUpstreamFailover(t *testing.T) {
	good := newFakeUpstream(t)
	good.add(vendorZone...)
	silent := newFakeUpstream(t)
	silent.set(func(f *fakeUpstream) { f.silent = true })
	failing := newFakeUpstream(t)
	failing.set(func(f *fakeUpstream) { f.rcode = dns.RcodeServerFailure })
	tests := []struct {
		name      string
		upstreams []string
		rcode     int
	}{
		{"first times out", []string{silent.addr, good.addr}, dns.RcodeSuccess},
		{"first says SERVFAIL", []string{failing.addr, good.addr}, dns.RcodeSuccess},
		{"every upstream fails: SERVFAIL", []string{failing.addr, silent.addr}, dns.RcodeServerFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(tc.upstreams...)
			cfg.UpstreamTimeout = 200 * 1e6
			cfg.Cache.Size = 0
			ts := startServer(t, cfg, Options{})
			r := ts.ask(t, query{name: "update.vendor.example."})
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestUpstreamHealthChecksOrderFailover(t *testing.T) {
	primary := newFakeUpstream(t)
	primary.add(vendorZone...)
	secondary := newFakeUpstream(t)
	secondary.add(vendorZone...)
	cfg := baseConfig(primary.addr, secondary.addr)
	cfg.Cache.Size = 0
	cfg.HealthInterval = 15e9
	ts := startServer(t, cfg, Options{})

	primary.set(func(f *fakeUpstream) { f.rcode = dns.RcodeServerFailure })
	ts.clock.Advance(cfg.HealthInterval) // the health check finds the primary failing
	clocktest.WaitFor(t, "primary marked down", func() bool { return !ts.fwd.status()[0].Up })
	if h := ts.Health(); len(h) != 1 || h[0].Code != "resolver-upstream-down" {
		t.Errorf("Health = %v, want one resolver-upstream-down", h)
	}
	before := primary.count()
	ts.ask(t, query{name: "update.vendor.example."})
	if primary.count() != before {
		t.Error("a query went to the primary marked down; want the secondary first")
	}

	primary.set(func(f *fakeUpstream) { f.rcode = 0 })
	ts.clock.Advance(cfg.HealthInterval)
	clocktest.WaitFor(t, "primary back up", func() bool { return ts.fwd.status()[0].Up })
	before = primary.count()
	ts.ask(t, query{name: "update.vendor.example."})
	if primary.count() != before+1 {
		t.Error("the recovered primary was not asked first")
	}
}

func TestDNSOverTLSUpstream(t *testing.T) {
	up, ca := newFakeTLSUpstream(t)
	up.add(vendorZone...)
	cfg := baseConfig()
	cfg.Upstreams = []Upstream{{Address: up.addr, Protocol: "tls", TLSServerName: "upstream.test", TLSCAFile: ca}}
	ts := startServer(t, cfg, Options{})
	r := ts.ask(t, query{name: "update.vendor.example."})
	if diff := cmp.Diff([]string{"update.vendor.example. A 192.0.2.1"}, answers(r)); diff != "" {
		t.Errorf("answer over DoT (-want +got):\n%s", diff)
	}
	_, _, nets := up.questions()
	if len(nets) == 0 || nets[len(nets)-1] != "tls" {
		t.Errorf("upstream transports %v, want tls", nets)
	}

	t.Run("wrong server name fails closed", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Upstreams = []Upstream{{Address: up.addr, Protocol: "tls", TLSServerName: "other.test", TLSCAFile: ca}}
		cfg.Cache.Size = 0
		ts := startServer(t, cfg, Options{})
		if r := ts.ask(t, query{name: "update.vendor.example."}); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("rcode = %s, want SERVFAIL when the certificate does not match", dns.RcodeToString[r.Rcode])
		}
	})
}

func TestRateLimitPerClient(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	cfg := baseConfig(up.addr)
	cfg.Limits.ClientRate, cfg.Limits.ClientBurst = 2, 5
	ts := startServer(t, cfg, Options{})
	var got []string
	for range 7 {
		got = append(got, dns.RcodeToString[ts.ask(t, query{name: "repo.vendor.example."}).Rcode])
	}
	// Another client has its own bucket.
	got = append(got, dns.RcodeToString[ts.ask(t, query{from: devicesClient, name: "repo.vendor.example."}).Rcode])
	ts.clock.Advance(1e9) // two tokens come back
	for range 3 {
		got = append(got, dns.RcodeToString[ts.ask(t, query{name: "repo.vendor.example."}).Rcode])
	}
	want := strings.Fields("NOERROR NOERROR NOERROR NOERROR NOERROR REFUSED REFUSED NOERROR NOERROR NOERROR REFUSED")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rcodes (-want +got):\n%s", diff)
	}
}

func TestLearnedHookGetsOnlyAllowedChainAddresses(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(vendorZone...)
	rec := &recorder{}
	ts := startServer(t, baseConfig(up.addr), Options{Answers: rec})
	up.set(func(f *fakeUpstream) { f.extraJunk = []dns.RR{mustRR(t, "injected.example. 300 IN A 203.0.113.66")} })
	r := ts.ask(t, query{name: "dl.vendor.example."})
	for _, rr := range r.Answer {
		if strings.HasPrefix(rr.Header().Name, "injected") {
			t.Errorf("answer carries a record off the CNAME chain: %v", rr)
		}
	}
	ts.ask(t, query{name: "www.example.com."})     // blocked: learns nothing
	ts.ask(t, query{name: "repo.vendor.example."}) // rewritten: the appliance itself
	ts.clock.Advance(5e9)
	ts.ask(t, query{name: "dl.vendor.example."}) // from the cache, 5s older
	rec.checkLearned(t, "clinical dl.vendor.example 192.0.2.3 20s", "clinical dl.vendor.example 192.0.2.3 15s")
}

func TestSegmentLookupMostSpecificAndMapped(t *testing.T) {
	cfg := baseConfig()
	p, errs := compile(&cfg, "", nil, testEpoch)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		addr string
		want string
	}{
		{"127.0.0.1", "clinical"},
		{"::ffff:127.0.0.3", "devices"},
		{"127.0.0.9", ""},
		{"::1", ""},
	}
	for _, tc := range tests {
		got := ""
		if sp := p.segmentOf(netip.MustParseAddr(tc.addr)); sp != nil {
			got = sp.name
		}
		if got != tc.want {
			t.Errorf("segmentOf(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

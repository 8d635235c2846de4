package resolver

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/clock/clocktest"
)

// TestRebindingSiteAddressesDropped: A/AAAA records with site addresses are dropped
// from the answers of names that are not private domains, never reach the answer sink,
// and are counted per segment, logged and reported with the device.
func TestRebindingSiteAddressesDropped(t *testing.T) {
	up := newFakeUpstream(t)
	up.add(
		"rfc1918.cdn.vendor.example. 300 IN A 10.0.0.5",
		"mixed.cdn.vendor.example. 300 IN A 192.0.2.10",
		"mixed.cdn.vendor.example. 300 IN A 192.168.1.1",
		"mixed.cdn.vendor.example. 300 IN A 172.20.0.1",
		"cgnat.cdn.vendor.example. 300 IN A 100.64.1.1",
		"zero.cdn.vendor.example. 300 IN A 0.1.2.3",
		"linklocal.cdn.vendor.example. 300 IN A 169.254.169.254",
		"loop.cdn.vendor.example. 300 IN CNAME x.unlisted-cdn.test.",
		"x.unlisted-cdn.test. 300 IN A 127.0.0.1",
		"segment.cdn.vendor.example. 300 IN A 198.51.100.7",
		"ula.cdn.vendor.example. 300 IN AAAA fd00::1",
		"v6loop.cdn.vendor.example. 300 IN AAAA ::1",
		"v6ll.cdn.vendor.example. 300 IN AAAA fe80::1",
		"mapped.cdn.vendor.example. 300 IN AAAA ::ffff:10.1.2.3",
		"public.cdn.vendor.example. 300 IN AAAA 2001:db8::7",
		"intranet.corp.vendor.example. 300 IN A 10.1.1.1",
		"corp.vendor.example. 300 IN A 10.1.1.2",
	)
	cfg := baseConfig(up.addr)
	cfg.Lists[0].Names = append(cfg.Lists[0].Names, "*.corp.vendor.example", "corp.vendor.example")
	cfg.PrivateDomains = []string{"corp.vendor.example"}
	// A segment of the appliance whose client prefix is no private range.
	cfg.Segments = append(cfg.Segments, Segment{Name: "lab"})
	addClients(&cfg, "lab", "198.51.100.0/24")
	rec := &recorder{}
	ts := startServer(t, cfg, Options{Answers: rec, Events: rec, Assets: rec})

	const nodata = "NODATA"
	tests := []struct {
		name    string
		q       query
		answer  []string // nodata: NOERROR, no records, an SOA
		learned []string
		blocked bool // counted as a rebinding attempt
	}{
		{"RFC 1918", query{name: "rfc1918.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"only the site addresses of a mixed answer", query{name: "mixed.cdn.vendor.example."},
			[]string{"mixed.cdn.vendor.example. A 192.0.2.10"}, []string{"clinical mixed.cdn.vendor.example 192.0.2.10 5m0s"}, true},
		{"shared address space", query{name: "cgnat.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"this network", query{name: "zero.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"link-local", query{name: "linklocal.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"loopback at the end of a CNAME chain", query{name: "loop.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"a segment's client prefix", query{name: "segment.cdn.vendor.example."}, []string{nodata}, nil, true},
		{"IPv6 unique local", query{name: "ula.cdn.vendor.example.", qtype: dns.TypeAAAA}, []string{nodata}, nil, true},
		{"IPv6 loopback", query{name: "v6loop.cdn.vendor.example.", qtype: dns.TypeAAAA}, []string{nodata}, nil, true},
		{"IPv6 link-local", query{name: "v6ll.cdn.vendor.example.", qtype: dns.TypeAAAA}, []string{nodata}, nil, true},
		{"IPv4-mapped IPv6", query{name: "mapped.cdn.vendor.example.", qtype: dns.TypeAAAA}, []string{nodata}, nil, true},
		{"public IPv6 served", query{name: "public.cdn.vendor.example.", qtype: dns.TypeAAAA},
			[]string{"public.cdn.vendor.example. AAAA 2001:db8::7"}, []string{"clinical public.cdn.vendor.example 2001:db8::7 5m0s"}, false},
		{"below a private domain", query{name: "intranet.corp.vendor.example."},
			[]string{"intranet.corp.vendor.example. A 10.1.1.1"}, []string{"clinical intranet.corp.vendor.example 10.1.1.1 5m0s"}, false},
		{"the private domain itself", query{name: "corp.vendor.example."},
			[]string{"corp.vendor.example. A 10.1.1.2"}, []string{"clinical corp.vendor.example 10.1.1.2 5m0s"}, false},
		{"rewritten names are the appliance's own", query{name: "repo.vendor.example."},
			[]string{"repo.vendor.example. A 10.20.0.1"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			metric := ts.metrics.rebinding.WithLabelValues("clinical")
			before := metricValue(metric)
			learnedBefore, _ := rec.got()
			for _, from := range []string{"upstream", "cache"} {
				r := ts.ask(t, tc.q)
				got := answers(r)
				if r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0 && len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA {
					got = []string{nodata}
				}
				if diff := cmp.Diff(tc.answer, got); diff != "" {
					t.Errorf("answer from the %s (-want +got):\n%s", from, diff)
				}
			}
			want := 0.0
			if tc.blocked {
				want = 2 // both queries
			}
			if got := metricValue(metric) - before; got != want {
				t.Errorf("patchgate_resolver_rebinding_blocked_total{segment=clinical} rose by %v, want %v", got, want)
			}
			learned, _ := rec.got()
			var wantLearned []string
			wantLearned = append(wantLearned, tc.learned...)
			wantLearned = append(wantLearned, tc.learned...)
			if diff := cmp.Diff(wantLearned, learned[len(learnedBefore):], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Learned (-want +got):\n%s", diff)
			}
			e := ts.qlog.recent(1)[0]
			if e.Rebinding != tc.blocked || (tc.blocked && !strings.HasPrefix(e.Reason, "rebinding: site address")) {
				t.Errorf("query log entry rebinding %v reason %q, want %v", e.Rebinding, e.Reason, tc.blocked)
			}
		})
	}

	// The answer sink never saw a site address of a public name.
	learned, _ := rec.got()
	for _, l := range learned {
		for _, bad := range []string{"10.0.0.5", "192.168.1.1", "172.20.0.1", "100.64.1.1", "0.1.2.3", "169.254.169.254",
			"127.0.0.1", "198.51.100.7", "fd00::1", "::1", "fe80::1", "10.1.2.3"} {
			if strings.Contains(l, " "+bad+" ") || strings.Contains(l, ","+bad) || strings.Contains(l, bad+",") {
				t.Errorf("Learned %q: a site address of a public name reached the answer sink", l)
			}
		}
	}
	// The device is reported to the event sink, with its asset name, once per window.
	ts.clock.Advance(cfg.QueryLog.EventWindow)
	clocktest.WaitFor(t, "rebinding events", func() bool { _, b := rec.got(); return len(b) > 0 })
	_, bursts := rec.got()
	found := false
	for _, b := range bursts {
		if b.Name == "rfc1918.cdn.vendor.example" {
			found = true
			if b.Asset != "printer-3" || b.Count != 2 || !strings.HasPrefix(b.Reason, "rebinding: site address 10.0.0.5") {
				t.Errorf("event %+v, want printer-3, 2 queries, the rebinding reason", b)
			}
		}
	}
	if !found {
		t.Errorf("events %+v, want one for rfc1918.cdn.vendor.example", bursts)
	}
}

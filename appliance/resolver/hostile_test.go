package resolver

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// cannedAnswer makes the fake upstream answer name with these records (zone file lines)
// in the answer, authority and additional sections.
func cannedAnswer(t *testing.T, f *fakeUpstream, name string, rcode int, answer, ns, extra []string) {
	t.Helper()
	canned := upstreamMsg(t, name, dns.TypeA, rcode, answer, ns, extra)
	f.set(func(f *fakeUpstream) {
		if f.canned == nil {
			f.canned = map[string]func(m *dns.Msg){}
		}
		f.canned[strings.ToLower(name)] = func(m *dns.Msg) {
			m.Rcode, m.Answer, m.Ns = canned.Rcode, canned.Answer, canned.Ns
			m.Extra = slices.DeleteFunc(slices.Clone(canned.Extra), func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
		}
	})
}

// TestBadChainsAreSERVFAILWithoutHammering: a CNAME loop and a chain longer than 11
// links are SERVFAIL with no records; the bad answer is remembered, so that retries
// ask no upstream (neither the same nor the next one) until badAnswerTTL has passed.
func TestBadChainsAreSERVFAILWithoutHammering(t *testing.T) {
	tests := []struct {
		name   string
		qname  string
		answer []string
	}{
		{"CNAME loop", "loop.cdn.vendor.example.", []string{
			"loop.cdn.vendor.example. 300 IN CNAME b.cdn.vendor.example.",
			"b.cdn.vendor.example. 300 IN CNAME c.cdn.vendor.example.",
			"c.cdn.vendor.example. 300 IN CNAME loop.cdn.vendor.example.",
		}},
		{"chain of 12 links", "c0.cdn.vendor.example.", chainAnswer(12)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, second := newFakeUpstream(t), newFakeUpstream(t)
			cannedAnswer(t, first, tc.qname, dns.RcodeSuccess, tc.answer, nil, nil)
			rec := &recorder{}
			ts := startServer(t, baseConfig(first.addr, second.addr), Options{Answers: rec})
			for i := range 5 {
				r := ts.ask(t, query{name: tc.qname, edns: 1232})
				if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 || len(r.Ns) != 0 {
					t.Fatalf("query %d: rcode %s, %d answers, %d authority; want SERVFAIL and nothing else",
						i, dns.RcodeToString[r.Rcode], len(r.Answer), len(r.Ns))
				}
			}
			if first.count() != 1 || second.count() != 0 {
				t.Errorf("upstreams asked %d and %d times for 5 queries, want 1 and 0", first.count(), second.count())
			}
			if learned, _ := rec.got(); len(learned) != 0 {
				t.Errorf("Learned %v from a bad answer, want nothing", learned)
			}
			if got := metricValue(ts.metrics.upstreamErrs.WithLabelValues("udp://"+first.addr, "bad_answer")); got != 1 {
				t.Errorf("upstream bad_answer errors = %v, want 1", got)
			}
			if e := ts.qlog.recent(5); !strings.Contains(e[4].Reason, "bad upstream answer") {
				t.Errorf("query log reason %q, want the bad answer named", e[4].Reason)
			}
			ts.clock.Advance(badAnswerTTL)
			ts.ask(t, query{name: tc.qname})
			if first.count() != 2 {
				t.Errorf("after %v the upstream was asked %d times in all, want 2", badAnswerTTL, first.count())
			}
		})
	}
}

// TestChainOfElevenLinksServed: the longest chain allowed is served whole.
func TestChainOfElevenLinksServed(t *testing.T) {
	up := newFakeUpstream(t)
	cannedAnswer(t, up, "c0.cdn.vendor.example.", dns.RcodeSuccess, chainAnswer(11), nil, nil)
	ts := startServer(t, baseConfig(up.addr), Options{})
	r := ts.ask(t, query{name: "c0.cdn.vendor.example."})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 12 {
		t.Errorf("rcode %s with %d records, want NOERROR with 11 CNAMEs and the A", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

// TestAuthorityAndAdditionalScrubbed: what a client gets, and what the cache keeps, has
// no record outside the chain's zones: no NS, no glue, no foreign SOA.
func TestAuthorityAndAdditionalScrubbed(t *testing.T) {
	up := newFakeUpstream(t)
	const (
		soaVendor = "vendor.example. 900 IN SOA ns.vendor.example. host.vendor.example. 1 3600 600 86400 30"
		soaEvil   = "evil.test. 900 IN SOA ns.evil.test. host.evil.test. 1 3600 600 86400 30"
	)
	poison := []string{"vendor.example. 300 IN NS ns.evil.test.", "example. 300 IN NS ns.evil.test."}
	glue := []string{"ns.evil.test. 300 IN A 203.0.113.9", "update.vendor.example. 300 IN A 203.0.113.10"}
	cannedAnswer(t, up, "a.cdn.vendor.example.", dns.RcodeSuccess,
		[]string{"a.cdn.vendor.example. 300 IN A 192.0.2.2", "update.vendor.example. 300 IN A 203.0.113.11"}, poison, glue)
	cannedAnswer(t, up, "gone.cdn.vendor.example.", dns.RcodeNameError, nil, append([]string{soaEvil, soaVendor}, poison...), glue)
	ts := startServer(t, baseConfig(up.addr), Options{})
	tests := []struct {
		name  string
		qname string
		want  [3][]string
	}{
		{"positive", "a.cdn.vendor.example.", [3][]string{{"a.cdn.vendor.example. A"}, nil, {". OPT"}}},
		{"negative", "gone.cdn.vendor.example.", [3][]string{nil, {"vendor.example. SOA"}, {". OPT"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, from := range []string{"upstream", "cache"} {
				r := ts.ask(t, query{name: tc.qname, edns: 1232})
				if diff := cmp.Diff(tc.want, sections(r)); diff != "" {
					t.Errorf("answer from the %s [answer, authority, additional] (-want +got):\n%s", from, diff)
				}
			}
			h, ok := ts.cache.get(cacheKey{name: canonical(tc.qname), qtype: dns.TypeA}, ts.clock.Now(), 0)
			if !ok {
				t.Fatal("answer not cached")
			}
			if diff := cmp.Diff(tc.want, sections(h.msg)); diff != "" {
				t.Errorf("cached answer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDNAMEServedWithItsCNAME: a DNAME in an answer is served with the CNAME it
// synthesizes, and the policy checks the chain as for CNAMEs.
func TestDNAMEServedWithItsCNAME(t *testing.T) {
	up := newFakeUpstream(t)
	cannedAnswer(t, up, "update.vendor-old.example.", dns.RcodeSuccess, []string{
		"vendor-old.example. 300 IN DNAME vendor.example.",
		"update.vendor-old.example. 300 IN CNAME update.vendor.example.",
		"update.vendor.example. 300 IN A 192.0.2.1",
	}, nil, nil)
	cannedAnswer(t, up, "fw.vendor-old.example.", dns.RcodeSuccess, []string{ // no CNAME from the upstream
		"vendor-old.example. 300 IN DNAME vendor.example.",
		"fw.vendor.example. 300 IN A 192.0.2.12",
	}, nil, nil)
	cannedAnswer(t, up, "bad.old-cdn.example.", dns.RcodeSuccess, []string{
		"old-cdn.example. 300 IN DNAME cdn.vendor.example.",
		"bad.old-cdn.example. 300 IN CNAME bad.cdn.vendor.example.",
		"bad.cdn.vendor.example. 300 IN A 192.0.2.66",
	}, nil, nil)
	cfg := baseConfig(up.addr)
	cfg.Lists[0].Names = append(cfg.Lists[0].Names, "*.vendor-old.example", "*.old-cdn.example")
	rec := &recorder{}
	ts := startServer(t, cfg, Options{Answers: rec})
	tests := []struct {
		name   string
		q      query
		rcode  int
		answer []string
	}{
		{"DNAME and CNAME served", query{name: "update.vendor-old.example."}, dns.RcodeSuccess, []string{
			"vendor-old.example. DNAME vendor.example.",
			"update.vendor-old.example. CNAME update.vendor.example.",
			"update.vendor.example. A 192.0.2.1"}},
		{"CNAME synthesized when missing", query{name: "fw.vendor-old.example."}, dns.RcodeSuccess, []string{
			"vendor-old.example. DNAME vendor.example.",
			"fw.vendor-old.example. CNAME fw.vendor.example.",
			"fw.vendor.example. A 192.0.2.12"}},
		{"strict: a DNAME target not allowed is blocked", query{from: strictClient, name: "fw.vendor-old.example."},
			dns.RcodeNameError, nil},
		{"follow: a DNAME into a blocked name is blocked", query{name: "bad.old-cdn.example."}, dns.RcodeNameError, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.ask(t, tc.q)
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if diff := cmp.Diff(tc.answer, answers(r)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	rec.checkLearned(t, "clinical update.vendor-old.example 192.0.2.1 5m0s", "clinical fw.vendor-old.example 192.0.2.12 5m0s")
}

// TestNewRefusesBadPrivateDomains: private_domains entries are checked like list
// entries, the bad one named by its index.
func TestNewRefusesBadPrivateDomains(t *testing.T) {
	cfg := baseConfig()
	cfg.PrivateDomains = []string{"corp.example", "not a name"}
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "private_domains[1]") {
		t.Errorf("New = %v, want an error naming private_domains[1]", err)
	}
	if err := CheckPrivateDomains([]string{"lan", "*.corp.example", "home.arpa."}); err != nil {
		t.Errorf("CheckPrivateDomains(good entries) = %v", err)
	}
}

package appliance

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/appliance/resolver"
)

// TestResolverWiring runs the System on the dev config and asks its resolver, over real
// loopback sockets, for a rewritten, a blocked and an unknown-client name; then checks
// the status panel and the metrics.
func TestResolverWiring(t *testing.T) {
	cfg := testConfig(t)
	if cfg.Resolver.Listen[0] != "127.0.0.1:0" {
		t.Fatalf("testConfig resolver listen = %v", cfg.Resolver.Listen)
	}
	// Lists are found next to the config file.
	dir := t.TempDir()
	writeListFiles(t, cfg, dir, "update.microsoft.com\n")
	cfg.Resolver.Upstreams = []resolver.Upstream{{Address: "127.0.0.1:9", Protocol: "udp"}} // discard port: nothing forwarded here
	sys := newSystem(t, cfg, Options{ConfigPath: filepath.Join(dir, "patchgate.yaml")})
	if sys.resolver == nil {
		t.Fatal("the dev config's resolver was not built")
	}
	runSystem(t, sys)
	waitUntil(t, "the resolver to be ready", 5*time.Second, sys.resolver.Ready)
	if h := sys.resolver.Health(); len(h) > 0 && h[0].Code == "resolver-list-invalid" {
		t.Fatalf("lists next to the config not loaded: %v", h)
	}
	addr := sys.resolver.Addrs()[0]

	tests := []struct {
		name   string
		from   string
		qname  string
		rcode  int
		answer string
	}{
		{"rewritten to the appliance", "127.0.0.1", "updates.vendor.example.", dns.RcodeSuccess, "127.0.0.1"},
		{"blocked", "127.0.0.1", "example.com.", dns.RcodeNameError, ""},
		{"canary", "127.0.0.2", "use-application-dns.net.", dns.RcodeNameError, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &dns.Client{Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(tc.from)}}}
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, dns.TypeA)
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			got := ""
			if len(r.Answer) == 1 {
				got = r.Answer[0].(*dns.A).A.String()
			}
			if got != tc.answer {
				t.Errorf("answer = %q, want %q", got, tc.answer)
			}
		})
	}

	get := func(path, accept string) string {
		code, body := fetch(t, "GET", "http://"+sys.AdminAddr()+path, nil, "Accept", accept)
		if code != 200 {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		return body
	}
	page := get("/", "text/html")
	for _, want := range []string{"DNS (allowlisting resolver)", "Most blocked names", "<code>example.com</code>", "Latest queries"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if js := get("/", "application/json"); !strings.Contains(js, `"top_blocked"`) {
		t.Error("status JSON lacks the dns panel's top_blocked")
	}
	metrics := get("/metrics", "text/plain")
	for _, want := range []string{`patchgate_resolver_queries_total{decision="rewritten",rcode="NOERROR"} 1`,
		`patchgate_resolver_queries_total{decision="blocked",rcode="NXDOMAIN"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestResolverDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Resolver.Enabled = false
	sys := newSystem(t, cfg, Options{})
	if sys.resolver != nil {
		t.Error("resolver built although disabled")
	}
}

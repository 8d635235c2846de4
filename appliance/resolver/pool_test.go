package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/clock/clocktest"
)

// TestUpstreamConnectionsReused: sequential queries to a TCP or DNS-over-TLS upstream
// share one connection; one idle past connIdleTimeout, or found dead, is replaced.
func TestUpstreamConnectionsReused(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) (*fakeUpstream, Upstream)
	}{
		{"tcp", func(t *testing.T) (*fakeUpstream, Upstream) {
			f := newFakeUpstream(t)
			return f, Upstream{Address: f.addr, Protocol: "tcp"}
		}},
		{"tls", func(t *testing.T) (*fakeUpstream, Upstream) {
			f, ca := newFakeTLSUpstream(t)
			return f, Upstream{Address: f.addr, Protocol: "tls", TLSServerName: "upstream.test", TLSCAFile: ca}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, u := tc.start(t)
			f.add(vendorZone...)
			cfg := baseConfig()
			cfg.Upstreams = []Upstream{u}
			cfg.Cache.Size = 0 // every query goes upstream
			ts := startServer(t, cfg, Options{})
			up := ts.fwd.ups[0]
			// The first health check has opened the connection and left it idle.
			clocktest.WaitFor(t, "health check connection idle", func() bool { return up.idleConns() == 1 })

			const n = 10
			for i := range n {
				if r := ts.ask(t, query{name: "update.vendor.example."}); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("query %d: %s with %d answers", i, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
			}
			if got := f.accepted.Load(); got != 1 {
				t.Errorf("%d sequential queries (and a health check) opened %d connections, want 1", n, got)
			}
			if f.count() != n {
				t.Errorf("upstream answered %d queries, want %d", f.count(), n)
			}

			ts.clock.Advance(connIdleTimeout) // idle too long: closed, a new one is opened
			ts.ask(t, query{name: "update.vendor.example."})
			if got := f.accepted.Load(); got != 2 {
				t.Errorf("after %v idle: %d connections in all, want 2", connIdleTimeout, got)
			}

			// A connection that died while idle fails on reuse and is replaced at once.
			up.mu.Lock()
			up.idle[0].c.Conn.Close()
			up.mu.Unlock()
			if r := ts.ask(t, query{name: "update.vendor.example."}); r.Rcode != dns.RcodeSuccess {
				t.Errorf("query on a dead idle connection: %s, want NOERROR on a new one", dns.RcodeToString[r.Rcode])
			}
			if got := f.accepted.Load(); got != 3 {
				t.Errorf("after a dead idle connection: %d connections in all, want 3", got)
			}
			if st := ts.fwd.status(); !st[0].Up {
				t.Errorf("upstream marked down (%s) by a dead idle connection", st[0].LastError)
			}
		})
	}
}

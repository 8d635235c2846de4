package gateway

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer serves zone on a loopback UDP port and returns its endpoint.
func dnsServer(t *testing.T, handler dns.HandlerFunc) Endpoint {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	ap := netip.MustParseAddrPort(pc.LocalAddr().String())
	return Endpoint{Addr: ap.Addr(), Proto: "udp", Port: ap.Port()}
}

func TestLookupHost(t *testing.T) {
	ep := dnsServer(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Name == "nx.example.":
			m.Rcode = dns.RcodeNameError
		case q.Name == "cdn.example." && q.Qtype == dns.TypeA:
			cname, _ := dns.NewRR("cdn.example. 30 IN CNAME edge.example.")
			a, _ := dns.NewRR("edge.example. 300 IN A 192.0.2.10")
			m.Answer = append(m.Answer, cname, a)
		case q.Name == "cdn.example." && q.Qtype == dns.TypeAAAA:
			aaaa, _ := dns.NewRR("cdn.example. 120 IN AAAA 2001:db8::10")
			m.Answer = append(m.Answer, aaaa)
		}
		w.WriteMsg(m)
	})
	ctx := context.Background()
	addrs, ttl, err := lookupHost(ctx, []Endpoint{ep}, "cdn.example")
	if err != nil {
		t.Fatalf("lookupHost: %v", err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	if !slices.Equal(addrs, want) || ttl != 30*time.Second {
		t.Errorf("lookupHost(cdn.example) = %v, %v; want %v, 30s (the CNAME's TTL)", addrs, ttl, want)
	}
	if _, _, err := lookupHost(ctx, []Endpoint{ep}, "nx.example"); err == nil {
		t.Error("lookupHost(nx.example) succeeded, want NXDOMAIN as an error")
	}
	if _, _, err := lookupHost(ctx, []Endpoint{ep}, "empty.example"); err == nil {
		t.Error("lookupHost(empty.example) succeeded, want no addresses as an error")
	}
	if _, _, err := lookupHost(ctx, nil, "cdn.example"); err == nil {
		t.Error("lookupHost without resolvers succeeded")
	}
}

package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/appliance/resolver"
)

// resolveHosts keeps the addresses of the egress host names (repositories, time
// servers) in the appliance's own learned sets: each is looked up again when its TTL
// runs out, and at least every refresh interval.
func (g *Gateway) resolveHosts(ctx context.Context) {
	for {
		p := g.Policy()
		next := p.Refresh
		var failed []string
		for _, h := range p.Hosts {
			addrs, ttl, err := lookupHost(ctx, p.Lookup, h)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				failed = append(failed, err.Error())
				g.metrics.lookups.WithLabelValues("error").Inc()
				next = min(next, 30*time.Second)
				continue
			}
			g.metrics.lookups.WithLabelValues("ok").Inc()
			g.Learned("", netip.Addr{}, h, addrs, ttl)
			next = min(next, max(ttl, 5*time.Second))
		}
		g.mu.Lock()
		g.lookupErr = nil
		if len(failed) > 0 {
			g.lookupErr = errors.New(strings.Join(failed, "; "))
		}
		g.mu.Unlock()
		var wake <-chan time.Time // nil without host names: wait for a reconfigure
		if len(p.Hosts) > 0 {
			wake = g.clock.After(next)
		}
		select {
		case <-ctx.Done():
			return
		case <-g.hosts:
		case <-wake:
		}
	}
}

// lookupHost asks the resolvers in turn for host's A and AAAA records and returns
// the addresses and the smallest TTL of the answers.
func lookupHost(ctx context.Context, resolvers []Endpoint, host string) ([]netip.Addr, time.Duration, error) {
	if len(resolvers) == 0 {
		return nil, 0, fmt.Errorf("look up %s: no resolver configured", host)
	}
	var lastErr error
	for _, r := range resolvers {
		var addrs []netip.Addr
		ttl := time.Duration(-1)
		ok := true
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			as, t, err := query(ctx, r, host, qt)
			if err != nil {
				lastErr = err
				ok = false
				break
			}
			addrs = append(addrs, as...)
			if len(as) > 0 && (ttl < 0 || t < ttl) {
				ttl = t
			}
		}
		if !ok {
			continue
		}
		if len(addrs) == 0 {
			return nil, 0, fmt.Errorf("look up %s: no addresses", host)
		}
		return addrs, ttl, nil
	}
	return nil, 0, lastErr
}

func query(ctx context.Context, r Endpoint, host string, qt uint16) ([]netip.Addr, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), qt)
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	if r.Proto == "tcp" {
		c.Net = "tcp"
	}
	qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, _, err := c.ExchangeContext(qctx, m, r.String())
	if err == nil && resp.Truncated && c.Net == "udp" {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(qctx, m, r.String())
	}
	if err != nil {
		return nil, 0, fmt.Errorf("look up %s at %s: %w", host, r, err)
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, 0, fmt.Errorf("look up %s at %s: %s", host, r, dns.RcodeToString[resp.Rcode])
	}
	var addrs []netip.Addr
	ttl := time.Duration(-1)
	for _, rr := range resp.Answer {
		switch rr.(type) {
		case *dns.A, *dns.AAAA, *dns.CNAME:
		default:
			continue
		}
		a := resolver.AnswerAddr(rr)
		t := time.Duration(rr.Header().Ttl) * time.Second
		if ttl < 0 || t < ttl {
			ttl = t // the chain lives as long as its shortest link
		}
		if a.IsValid() {
			addrs = append(addrs, a.Unmap())
		}
	}
	return addrs, max(ttl, 0), nil
}

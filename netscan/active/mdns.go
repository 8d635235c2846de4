package active

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/passive"
)

// maxServiceQueries bounds the follow-up questions of the mDNS probe.
const maxServiceQueries = 8

// probeMDNS sends a unicast DNS-SD query (RFC 6762 5.5, to h's port 5353
// from an ordinary port, so the answer comes back by unicast) for the
// service types h offers, then one query for the instances of those types,
// whose answers carry the TXT records (ty, product, usb_MFG, usb_MDL).
func (sc *scan) probeMDNS(ctx context.Context, h *host) {
	o := sc.obs(netscan.SourceMDNSQ, h)
	if !sc.mdnsQuery(ctx, h, &o, []string{"_services._dns-sd._udp.local."}) {
		return
	}
	var names []string
	for _, st := range o.All(netscan.KeyMDNSService) {
		if len(names) == maxServiceQueries {
			break
		}
		names = append(names, st+".local.")
	}
	if len(names) > 0 {
		sc.mdnsQuery(ctx, h, &o, names)
	}
	if len(o.Facts) > 0 {
		sc.send(o)
	}
}

// mdnsQuery sends one query with a PTR question per name and reads one
// answer into o. It reports whether an answer came.
func (sc *scan) mdnsQuery(ctx context.Context, h *host, o *netscan.Observation, names []string) bool {
	m := new(dns.Msg)
	m.Id = dns.Id()
	for _, n := range names {
		m.Question = append(m.Question, dns.Question{Name: n, Qtype: dns.TypePTR, Qclass: dns.ClassINET})
	}
	q, err := m.Pack()
	if err != nil {
		return false
	}
	if err := sc.charge(ctx, h, ProbeMDNS, 1); err != nil {
		return false
	}
	c, err := net.Dial("udp", netip.AddrPortFrom(h.addr, sc.cfg.MDNSPort).String())
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write(q); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(sc.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 9000)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		if n < 2 || uint16(buf[0])<<8|uint16(buf[1]) != m.Id {
			continue
		}
		ok, err := passive.ParseMDNS(buf[:n], o)
		return err == nil && ok
	}
}

package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Policy is what the gateway enforces, taken from the gateway section by PolicyFrom. Build
// turns it into the ruleset.
type Policy struct {
	// Segments are the segments the appliance routes for.
	Segments []Segment
	// Local are the subnets of every configured segment (clients and the appliance's
	// own): the appliance may always talk to them.
	Local []netip.Prefix
	// Repositories and TimeServers are the static egress prefixes; Resolvers the DNS
	// servers with their ports.
	Repositories []netip.Prefix
	TimeServers  []netip.Prefix
	Resolvers    []Endpoint
	// Hosts are egress host names, resolved at run time into the appliance's own
	// learned sets; Lookup are the resolvers to ask (host:port).
	Hosts  []string
	Lookup []Endpoint

	Grace      time.Duration
	MaxTimeout time.Duration
	LogGroup   uint16
	LogRate    int
	// OpenOnStop removes the table when Run returns; otherwise it stays, closed, with
	// its learned addresses, and the next Run takes them over.
	OpenOnStop bool
	Refresh    time.Duration
	Stats      time.Duration
}

// Segment is one segment the gateway routes for.
type Segment struct {
	Name    string
	Device  string // the interface its traffic arrives on
	Clients []netip.Prefix
	// Ports are where a device may connect on the addresses its own answers returned.
	Ports []Port
}

// Port is a transport protocol (IPPROTO_TCP or IPPROTO_UDP) and a destination port.
type Port struct {
	Proto byte
	Num   uint16
}

// defaultPorts are a segment's ports when the policy names none: HTTP and HTTPS.
var defaultPorts = []Port{{protoTCP, 80}, {protoTCP, 443}}

// hasClient reports whether a is one of the segment's client addresses.
func (s Segment) hasClient(a netip.Addr) bool {
	for _, p := range s.Clients {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Endpoint is an address, a protocol and a port: a resolver the appliance may reach.
type Endpoint struct {
	Addr  netip.Addr
	Proto string // udp (and tcp), tcp, or tls
	Port  uint16
}

// String is host:port, the form DNS clients dial.
func (e Endpoint) String() string {
	return net.JoinHostPort(e.Addr.String(), strconv.Itoa(int(e.Port)))
}

// PolicyFrom takes the gateway's policy from a validated gateway section and what it
// refers to.
func PolicyFrom(g Section, refs Refs) (Policy, error) {
	p := Policy{
		Grace:      g.Grace.D(),
		MaxTimeout: g.MaxTimeout.D(),
		LogGroup:   g.LogGroup,
		LogRate:    g.LogRate,
		OpenOnStop: g.OpenOnStop,
		Refresh:    g.Egress.Refresh.D(),
		Stats:      g.StatsInterval.D(),
	}
	for _, name := range g.Segments {
		s, ok := refs.Segments.Named(name)
		if !ok {
			return Policy{}, fmt.Errorf("gateway: no segment named %q", name)
		}
		seg := Segment{Name: s.Name, Device: s.Device()}
		seg.Ports = g.PortsOf(name)
		for _, cl := range s.Clients {
			seg.Clients = append(seg.Clients, cl.Masked())
		}
		p.Segments = append(p.Segments, seg)
	}
	for _, cl := range refs.Segments.Clients() {
		p.Local = append(p.Local, cl.Masked())
	}
	for _, a := range refs.Segments.Addresses() {
		p.Local = append(p.Local, a.Masked())
	}
	p.Local = coverPrefixes(p.Local)
	add := func(list []string, dst *[]netip.Prefix) error {
		for _, s := range list {
			d, err := ParseDestination(s)
			if err != nil {
				return fmt.Errorf("gateway: egress %q: %w", s, err)
			}
			if d.Host != "" {
				if !slices.Contains(p.Hosts, d.Host) {
					p.Hosts = append(p.Hosts, d.Host)
				}
				continue
			}
			*dst = append(*dst, d.Prefix)
		}
		return nil
	}
	if err := add(g.Egress.Repositories, &p.Repositories); err != nil {
		return Policy{}, err
	}
	if err := add(g.Egress.TimeServers, &p.TimeServers); err != nil {
		return Policy{}, err
	}
	p.Repositories = coverPrefixes(p.Repositories)
	p.TimeServers = coverPrefixes(p.TimeServers)
	for _, r := range g.Egress.Resolvers {
		e := Endpoint{Addr: r.Addr().Unmap(), Proto: "udp", Port: 53}
		p.Resolvers = append(p.Resolvers, e, Endpoint{Addr: e.Addr, Proto: "tls", Port: 853})
		p.Lookup = append(p.Lookup, e)
	}
	// The resolver's upstreams are egress the appliance needs: one definition.
	for _, u := range refs.Upstreams {
		host, port, err := net.SplitHostPort(u.Address)
		if err != nil {
			continue // validated by the resolver section
		}
		a, err := netip.ParseAddr(host)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil {
			continue
		}
		proto := u.Protocol
		if proto == "" {
			proto = "udp"
		}
		e := Endpoint{Addr: a.Unmap(), Proto: proto, Port: uint16(n)}
		if !slices.Contains(p.Resolvers, e) {
			p.Resolvers = append(p.Resolvers, e)
		}
		if proto != "tls" && !slices.Contains(p.Lookup, e) {
			p.Lookup = append(p.Lookup, e)
		}
	}
	return p, nil
}

// coverPrefixes sorts ps and drops every prefix another one already covers.
func coverPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var kept []netip.Prefix
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if last.Addr().Is4() == p.Addr().Is4() && last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept
}

// segment returns the policy's segment called name.
func (p *Policy) segment(name string) (Segment, bool) {
	for _, s := range p.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return Segment{}, false
}

// timeout is how long an answer with ttl keeps its addresses in a set: ttl + grace,
// at least a second, at most MaxTimeout.
func (p *Policy) timeout(ttl time.Duration) time.Duration {
	t := ttl + p.Grace
	if t < time.Second {
		t = time.Second
	}
	if p.MaxTimeout > 0 && t > p.MaxTimeout {
		t = p.MaxTimeout
	}
	return t.Truncate(time.Millisecond)
}

package gateway

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

// Section is the gateway section of patchgate.yaml: the egress policy the appliance enforces with nftables, in a table of its
// own (inet patchgate). The appliance's own outbound traffic may go only to the
// configured egress destinations and to addresses learned from allowlisted DNS answers;
// traffic it forwards for the segments listed in Segments may go only to addresses
// learned from that segment's DNS answers. Programming nftables needs CAP_NET_ADMIN, so
// the gateway is off unless Enabled.
type Section struct {
	Enabled bool `yaml:"enabled"`
	// OpenOnStop removes the table when patchgate stops, so the segments' traffic is
	// forwarded unfiltered until it starts again. By default (false) the table and its
	// learned addresses stay in the kernel, closed, and are taken over at the next start.
	OpenOnStop bool `yaml:"open_on_stop"`
	// FailClosed is the old switch for keeping the table on stop, which is now the
	// default. It is still accepted so that old config files load: true changes
	// nothing, false no longer opens the segments on stop (open_on_stop: true does).
	FailClosed *bool `yaml:"fail_closed"`
	// Segments names the segments the appliance routes for. Their forwarded traffic
	// may go only to addresses their own DNS answers returned, from the device that
	// asked, on the allowed ports; DNS (53) and DoT/DoQ (853) only to the appliance.
	// Forwarding for any other source is dropped.
	Segments []string `yaml:"segments"`
	// Ports are where a device may connect on an address its answers returned, for
	// every routed segment: "443" or "443/tcp" (TCP), "443/udp".
	Ports []string `yaml:"ports"`
	// SegmentPorts replaces Ports for the segments it names.
	SegmentPorts map[string][]string `yaml:"segment_ports"`
	// Grace is added to each answer's TTL: the set entry lives TTL+grace, so a client
	// that connects just before its cached answer expires is not cut off.
	Grace conf.Duration `yaml:"grace"`
	// MaxTimeout caps an entry's lifetime whatever the TTL says.
	MaxTimeout conf.Duration `yaml:"max_timeout"`
	// Egress lists where the appliance itself may connect besides learned addresses.
	Egress EgressSection `yaml:"egress"`
	// LogGroup is the NFLOG group denied flows are logged to (read back by patchgate
	// and logged with the device's inventory name). LogRate bounds the log lines per
	// second per segment; 0 turns the logging off (the counters still count).
	LogGroup uint16 `yaml:"log_group"`
	LogRate  int    `yaml:"log_rate"`
	// StatsInterval is how often the nftables counters and set sizes are read for the
	// metrics and the status page.
	StatsInterval conf.Duration `yaml:"stats_interval"`
}

// EgressSection lists the appliance's own outbound destinations. Each entry is an
// address, a prefix (203.0.113.0/24) or a host name; host names are resolved through
// Resolvers and their addresses kept for their TTL (plus the gateway's grace).
type EgressSection struct {
	// Repositories may be reached on any port (the upstream TUF repositories and the
	// hosts their targets come from).
	Repositories []string `yaml:"repositories"`
	// Resolvers may be reached on 53/udp, 53/tcp and 853/tcp. Addresses only. The
	// resolver's upstreams (resolver.upstreams) are allowed too, on their own ports,
	// without being listed here.
	Resolvers []conf.Prefix `yaml:"resolvers"`
	// TimeServers may be reached on 123/udp.
	TimeServers []string `yaml:"time_servers"`
	// Refresh is how often host names are resolved again at the latest (sooner when
	// their TTL runs out).
	Refresh conf.Duration `yaml:"refresh"`
}

// DefaultSection is the gateway section of a config that leaves it out: off.
func DefaultSection() Section {
	return Section{Grace: conf.Duration(30 * time.Second), MaxTimeout: conf.Duration(24 * time.Hour), LogGroup: 1717, LogRate: 10,
		Ports: []string{"80", "443"}, StatsInterval: conf.Duration(15 * time.Second), Egress: EgressSection{Refresh: conf.Duration(time.Hour)}}
}

// Refs are what the gateway section refers to outside itself.
type Refs struct {
	// Segments are the configured segments.
	Segments *segment.Table
	// Upstreams are the resolver's upstreams (resolver.upstreams): the appliance may
	// reach them without listing them in gateway.egress.resolvers.
	Upstreams []resolver.Upstream
}

// Validate checks the gateway section and its references to the segments.
func (g Section) Validate(key string, refs Refs, ps *conf.Problems) {
	segs := refs.Segments.All()
	if g.Grace.D() < 0 || g.Grace.D() > time.Hour {
		ps.Addf(key+".grace", "must be between 0s and 1h, got %s", g.Grace.D())
	}
	if g.MaxTimeout.D() < time.Minute || g.MaxTimeout.D() > 7*24*time.Hour {
		ps.Addf(key+".max_timeout", "must be between 1m and 168h, got %s", g.MaxTimeout.D())
	}
	if g.LogRate < 0 || g.LogRate > 10000 {
		ps.Addf(key+".log_rate", "must be between 0 and 10000 per second, got %d", g.LogRate)
	}
	if g.StatsInterval.D() < time.Second || g.StatsInterval.D() > time.Hour {
		ps.Addf(key+".stats_interval", "must be between 1s and 1h, got %s", g.StatsInterval.D())
	}
	if g.FailClosed != nil && *g.FailClosed && g.OpenOnStop {
		ps.Addf(key+".fail_closed", "contradicts open_on_stop: true; remove fail_closed (the table is kept on stop unless open_on_stop)")
	}
	validatePorts(key+".ports", g.Ports, ps)
	for _, name := range slices.Sorted(maps.Keys(g.SegmentPorts)) {
		ports := g.SegmentPorts[name]
		if !slices.Contains(g.Segments, name) {
			ps.Addf(key+".segment_ports."+name, "segment %q is not in gateway.segments", name)
		}
		validatePorts(key+".segment_ports."+name, ports, ps)
	}
	seen := map[string]bool{}
	for i, name := range g.Segments {
		k := conf.Index(key+".segments", i)
		var seg *segment.Segment
		for j := range segs {
			if segs[j].Name == name {
				seg = &segs[j]
			}
		}
		switch {
		case seg == nil:
			ps.Addf(k, "no segment named %q in segments", name)
		case seen[name]:
			ps.Addf(k, "segment %q listed twice", name)
		case g.Enabled && seg.Interface == "":
			// Without an interface a source address is all that says which segment a
			// packet came from, and another segment could forge it.
			ps.Addf(k, "segment %q has no interface; the gateway matches forwarded traffic by interface and client subnet", name)
		}
		seen[name] = true
	}
	g.Egress.validate(key+".egress", len(refs.Upstreams) > 0, ps)
}

func (e EgressSection) validate(key string, haveUpstreams bool, ps *conf.Problems) {
	names := false
	for _, list := range []struct {
		key     string
		entries []string
	}{{"repositories", e.Repositories}, {"time_servers", e.TimeServers}} {
		for i, s := range list.entries {
			d, err := ParseDestination(s)
			if err != nil {
				ps.Addf(conf.Index(key+"."+list.key, i), "%v, got %q", err, s)
			}
			names = names || d.Host != ""
		}
	}
	for i, r := range e.Resolvers {
		if r.Addr().IsValid() && r.Bits() != r.Addr().BitLen() {
			ps.Addf(conf.Index(key+".resolvers", i), "must be a single address, got %s", r)
		}
	}
	if names && len(e.Resolvers) == 0 && !haveUpstreams {
		ps.Addf(key+".resolvers", "must list at least one resolver (or resolver.upstreams must) to look up the host names in repositories and time_servers")
	}
	if e.Refresh.D() < 10*time.Second || e.Refresh.D() > 24*time.Hour {
		ps.Addf(key+".refresh", "must be between 10s and 24h, got %s", e.Refresh.D())
	}
}

func validatePorts(key string, ports []string, ps *conf.Problems) {
	if len(ports) == 0 {
		ps.Addf(key, "must list at least one port (80, 443/tcp, 443/udp)")
	}
	for i, s := range ports {
		if _, err := ParsePort(s); err != nil {
			ps.Addf(conf.Index(key, i), "%v, got %q", err, s)
		}
	}
}

// ParsePort reads an entry of gateway.ports: "443" or "443/tcp" (TCP) and "443/udp".
func ParsePort(s string) (Port, error) {
	num, proto, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	p := Port{Proto: protoTCP}
	switch {
	case !ok, proto == "tcp":
	case proto == "udp":
		p.Proto = protoUDP
	default:
		return Port{}, errors.New("want PORT, PORT/tcp or PORT/udp")
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return Port{}, errors.New("want a port number from 1 to 65535")
	}
	p.Num = uint16(n)
	return p, nil
}

// PortsOf returns the ports segment may reach on learned addresses (validated).
func (g Section) PortsOf(segment string) []Port {
	list := g.Ports
	if ps, ok := g.SegmentPorts[segment]; ok {
		list = ps
	}
	var out []Port
	for _, s := range list {
		if p, err := ParsePort(s); err == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Destination is one egress entry: a host name to resolve, or a prefix.
type Destination struct {
	Host   string       // lower-case, without a final dot; empty for a prefix
	Prefix netip.Prefix // valid when Host is empty
}

// ParseDestination reads an address (203.0.113.7), a prefix (203.0.113.0/24) or a host
// name (updates.example.com).
func ParseDestination(s string) (Destination, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return Destination{}, errString("prefix has host bits set")
		}
		return Destination{Prefix: p}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Destination{}, errString("want an address without a zone")
		}
		return Destination{Prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	h := strings.ToLower(strings.TrimSuffix(s, "."))
	if !validHostName(h) {
		return Destination{}, errString("want an address, a prefix or a host name")
	}
	return Destination{Host: h}, nil
}

// validHostName accepts LDH names of at least two labels.
func validHostName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	// An all-numeric last label is a malformed address, not a name.
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

type errString string

func (e errString) Error() string { return string(e) }

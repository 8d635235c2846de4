package resolver

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

// Section is the resolver section of patchgate.yaml: the allowlisting DNS server for the
// managed segments. Its client groups
// are the root config's segments: resolver.segments gives each segment (by name) its
// allowlists and its answer for everything else. Addresses in no segment get REFUSED.
type Section struct {
	Enabled bool `yaml:"enabled"`
	// Listen are the host:port addresses served over UDP and TCP.
	Listen []string `yaml:"listen"`
	// Upstreams are tried in order; unhealthy ones last.
	Upstreams       []Upstream    `yaml:"upstreams"`
	UpstreamTimeout conf.Duration `yaml:"upstream_timeout"`
	HealthInterval  conf.Duration `yaml:"health_interval"`
	// Lists are named name lists (inline names and/or list files) that segments refer to.
	Lists []List `yaml:"lists"`
	// Segments gives each segment's policy, by segment name.
	Segments []SegmentPolicy `yaml:"segments"`
	// BlockPublicDoH blocks the shipped list of public DNS-over-HTTPS hostnames in every
	// segment, even when an allowlist wildcard would allow them.
	BlockPublicDoH bool `yaml:"block_public_doh"`
	// PrivateDomains may answer site addresses (RFC 1918, RFC 4193, loopback,
	// link-local, 100.64/10, the segments' clients); every other name loses them
	// (DNS rebinding). "corp.example" covers itself and below, "*.corp.example" below.
	PrivateDomains []string `yaml:"private_domains"`
	// ReloadInterval is how often list files are checked for changes (SIGHUP reloads too).
	ReloadInterval conf.Duration `yaml:"reload_interval"`
	// LocalTTL is the TTL of the answers the resolver makes itself: rewritten names and
	// blocked ones (also the SOA minimum that clients cache blocked answers for).
	LocalTTL conf.Duration   `yaml:"local_ttl"`
	Cache    CacheSection    `yaml:"cache"`
	Limits   LimitsSection   `yaml:"limits"`
	QueryLog QueryLogSection `yaml:"query_log"`
}

// Files lists the list files the section names (relative to the config file's
// directory), for the loader to check.
func (r Section) Files(key string) []conf.FileRef {
	if !r.Enabled {
		return nil
	}
	var out []conf.FileRef
	for i, l := range r.Lists {
		for j, f := range l.Files {
			out = append(out, conf.FileRef{Key: conf.Index(conf.Index(key+".lists", i)+".files", j), Path: f, ConfigRelative: true})
		}
	}
	return out
}

// SegmentPolicy is one segment's DNS policy (resolver.segments[]). A segment without one blocks every name.
type SegmentPolicy struct {
	Segment string `yaml:"segment"`
	// Allow, Rewrite and Block name lists of resolver.lists.
	Allow   []string `yaml:"allow"`
	Rewrite []string `yaml:"rewrite"`
	Block   []string `yaml:"block"`
	// RewriteTo overrides the addresses rewritten names resolve to (default: the
	// segment's own addresses from segments[].addresses).
	RewriteTo []string `yaml:"rewrite_to"`
	// BlockedAnswer is nxdomain (the default, with an SOA), refused, nodata or sinkhole.
	BlockedAnswer string   `yaml:"blocked_answer"`
	Sinkhole      []string `yaml:"sinkhole"`
	// CNAME is follow (the default: a chain that starts at an allowed name is served) or strict (every
	// CNAME target must be allowed or match cname_targets).
	CNAME        string   `yaml:"cname"`
	CNAMETargets []string `yaml:"cname_targets"`
}

// CacheSection bounds the answer cache.
type CacheSection struct {
	Size            int           `yaml:"size"` // entries; 0 disables the cache
	MinTTL          conf.Duration `yaml:"min_ttl"`
	MaxTTL          conf.Duration `yaml:"max_ttl"`
	NegativeTTL     conf.Duration `yaml:"negative_ttl"` // maximum for NXDOMAIN/NODATA
	Prefetch        bool          `yaml:"prefetch"`
	PrefetchMinHits int           `yaml:"prefetch_min_hits"`
}

// LimitsSection protects the resolver and the upstreams.
type LimitsSection struct {
	MaxConcurrent     int           `yaml:"max_concurrent"` // queries being forwarded at once
	ClientRate        float64       `yaml:"client_rate"`    // queries per second per client address
	ClientBurst       int           `yaml:"client_burst"`
	UDPBufferSize     int           `yaml:"udp_buffer_size"` // EDNS size advertised and read buffer
	TCPIdleTimeout    conf.Duration `yaml:"tcp_idle_timeout"`
	TCPMaxQueries     int           `yaml:"tcp_max_queries"` // per connection
	TCPMaxConnections int           `yaml:"tcp_max_connections"`
}

// QueryLogSection sets what is remembered and written about queries.
type QueryLogSection struct {
	Ring        int           `yaml:"ring"` // recent queries kept for the status page
	Log         string        `yaml:"log"`  // none, blocked or all
	LogRate     float64       `yaml:"log_rate"`
	EventWindow conf.Duration `yaml:"event_window"` // blocked-query bursts are reported once per window
}

// DefaultSection is the resolver section of a config that leaves it out.
func DefaultSection() Section {
	return Section{
		Enabled:         true,
		Listen:          []string{":53"},
		Upstreams:       []Upstream{{Address: "9.9.9.9:53", Protocol: "udp"}, {Address: "149.112.112.112:53", Protocol: "udp"}},
		UpstreamTimeout: conf.Duration(2 * time.Second),
		HealthInterval:  conf.Duration(15 * time.Second),
		BlockPublicDoH:  true,
		ReloadInterval:  conf.Duration(5 * time.Second),
		LocalTTL:        conf.Duration(60 * time.Second),
		Cache: CacheSection{Size: 20000, MinTTL: conf.Duration(0), MaxTTL: conf.Duration(24 * time.Hour),
			NegativeTTL: conf.Duration(5 * time.Minute), Prefetch: true, PrefetchMinHits: 3},
		Limits: LimitsSection{MaxConcurrent: 512, ClientRate: 100, ClientBurst: 200, UDPBufferSize: 1232,
			TCPIdleTimeout: conf.Duration(10 * time.Second), TCPMaxQueries: 100, TCPMaxConnections: 256},
		QueryLog: QueryLogSection{Ring: 1000, Log: "blocked", LogRate: 10, EventWindow: conf.Duration(time.Minute)},
	}
}

var listName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Validate checks the resolver section and its references to the segments.
func (r Section) Validate(key string, segs *segment.Table, ps *conf.Problems) {
	if r.Enabled && len(r.Listen) == 0 {
		ps.Addf(key+".listen", "must list at least one host:port when enabled")
	}
	for i, l := range r.Listen {
		if err := conf.CheckHostPort(l); err != nil {
			ps.Addf(conf.Index(key+".listen", i), "%v, got %q", err, l)
		}
	}
	if err := CheckPrivateDomains(r.PrivateDomains); err != nil {
		ps.Addf(key+".private_domains", "%v", err)
	}
	for i, u := range r.Upstreams {
		k := conf.Index(key+".upstreams", i)
		if err := conf.CheckHostPort(u.Address); err != nil || strings.HasPrefix(u.Address, ":") {
			ps.Addf(k+".address", "want an IP address and port like 9.9.9.9:53, got %q", u.Address)
		}
		switch u.Protocol {
		case "", "udp", "tcp":
			if u.TLSServerName != "" || u.TLSCAFile != "" {
				ps.Addf(k+".protocol", "tls_server_name and tls_ca_file need protocol tls, got %q", u.Protocol)
			}
		case "tls":
			if u.TLSServerName == "" {
				ps.Addf(k+".tls_server_name", "must be set for protocol tls (the name in the upstream's certificate)")
			}
		default:
			ps.Addf(k+".protocol", "must be one of udp, tcp, tls, got %q", u.Protocol)
		}
	}
	checkRange(ps, key+".upstream_timeout", r.UpstreamTimeout.D(), 100*time.Millisecond, 30*time.Second)
	checkRange(ps, key+".health_interval", r.HealthInterval.D(), time.Second, time.Hour)
	checkRange(ps, key+".reload_interval", r.ReloadInterval.D(), time.Second, time.Hour)
	checkRange(ps, key+".local_ttl", r.LocalTTL.D(), 0, 24*time.Hour)

	lists := map[string]bool{}
	for i, l := range r.Lists {
		k := conf.Index(key+".lists", i)
		if !listName.MatchString(l.Name) {
			ps.Addf(k+".name", "must be lower-case letters, digits, - or _ (max 64), got %q", l.Name)
		} else if lists[l.Name] {
			ps.Addf(k+".name", "duplicate list name %q", l.Name)
		}
		lists[l.Name] = true
		if len(l.Files) == 0 && len(l.Names) == 0 {
			ps.Addf(k, "must have files or names")
		}
		for j, n := range l.Names {
			if err := checkConfigName(n); err != nil {
				ps.Addf(conf.Index(k+".names", j), "%v, got %q", err, n)
			}
		}
		for j, f := range l.Files {
			if f == "" {
				ps.Addf(conf.Index(k+".files", j), "must not be empty")
			}
		}
	}
	seen := map[string]bool{}
	for i, s := range r.Segments {
		k := conf.Index(key+".segments", i)
		seg, ok := segs.Named(s.Segment)
		switch {
		case !ok:
			ps.Addf(k+".segment", "no segment named %q in segments", s.Segment)
		case seen[s.Segment]:
			ps.Addf(k+".segment", "duplicate policy for segment %q", s.Segment)
		}
		seen[s.Segment] = true
		for field, names := range map[string][]string{"allow": s.Allow, "rewrite": s.Rewrite, "block": s.Block} {
			for j, n := range names {
				if !lists[n] {
					ps.Addf(conf.Index(k+"."+field, j), "no list named %q in %s.lists", n, key)
				}
			}
		}
		for j, a := range s.RewriteTo {
			if _, err := netip.ParseAddr(a); err != nil {
				ps.Addf(conf.Index(k+".rewrite_to", j), "want an IP address, got %q", a)
			}
		}
		if len(s.Rewrite) > 0 && len(s.RewriteTo) == 0 && ok && len(seg.Addresses) == 0 {
			ps.Addf(k+".rewrite_to", "must be set: segment %q has no addresses to rewrite to", s.Segment)
		}
		switch s.BlockedAnswer {
		case "", "nxdomain", "refused", "nodata":
			if len(s.Sinkhole) > 0 {
				ps.Addf(k+".sinkhole", "needs blocked_answer sinkhole, got %q", s.BlockedAnswer)
			}
		case "sinkhole":
			if len(s.Sinkhole) == 0 {
				ps.Addf(k+".sinkhole", "must list at least one address for blocked_answer sinkhole")
			}
		default:
			ps.Addf(k+".blocked_answer", "must be one of nxdomain, refused, nodata, sinkhole, got %q", s.BlockedAnswer)
		}
		for j, a := range s.Sinkhole {
			if _, err := netip.ParseAddr(a); err != nil {
				ps.Addf(conf.Index(k+".sinkhole", j), "want an IP address, got %q", a)
			}
		}
		switch s.CNAME {
		case "", "follow", "strict":
		default:
			ps.Addf(k+".cname", "must be follow or strict, got %q", s.CNAME)
		}
		for j, n := range s.CNAMETargets {
			if err := checkConfigName(n); err != nil {
				ps.Addf(conf.Index(k+".cname_targets", j), "%v, got %q", err, n)
			}
		}
	}

	if r.Cache.Size < 0 || r.Cache.Size > 10_000_000 {
		ps.Addf(key+".cache.size", "must be 0-10000000 entries, got %d", r.Cache.Size)
	}
	checkRange(ps, key+".cache.min_ttl", r.Cache.MinTTL.D(), 0, time.Hour)
	checkRange(ps, key+".cache.max_ttl", r.Cache.MaxTTL.D(), time.Second, 7*24*time.Hour)
	checkRange(ps, key+".cache.negative_ttl", r.Cache.NegativeTTL.D(), 0, 24*time.Hour)
	if r.Cache.MinTTL > r.Cache.MaxTTL {
		ps.Addf(key+".cache.min_ttl", "must not exceed cache.max_ttl (%s), got %s", r.Cache.MaxTTL.D(), r.Cache.MinTTL.D())
	}
	if r.Cache.PrefetchMinHits < 1 {
		ps.Addf(key+".cache.prefetch_min_hits", "must be at least 1, got %d", r.Cache.PrefetchMinHits)
	}

	l := r.Limits
	if l.MaxConcurrent < 1 || l.MaxConcurrent > 100_000 {
		ps.Addf(key+".limits.max_concurrent", "must be 1-100000, got %d", l.MaxConcurrent)
	}
	if l.ClientRate < 0 {
		ps.Addf(key+".limits.client_rate", "must be 0 (no limit) or more queries per second, got %v", l.ClientRate)
	}
	if l.ClientRate > 0 && l.ClientBurst < 1 {
		ps.Addf(key+".limits.client_burst", "must be at least 1 when client_rate is set, got %d", l.ClientBurst)
	}
	if l.UDPBufferSize < 1232 || l.UDPBufferSize > 65535 {
		ps.Addf(key+".limits.udp_buffer_size", "must be 1232-65535 bytes, got %d", l.UDPBufferSize)
	}
	checkRange(ps, key+".limits.tcp_idle_timeout", l.TCPIdleTimeout.D(), 100*time.Millisecond, 10*time.Minute)
	if l.TCPMaxQueries < 1 {
		ps.Addf(key+".limits.tcp_max_queries", "must be at least 1, got %d", l.TCPMaxQueries)
	}
	if l.TCPMaxConnections < 1 || l.TCPMaxConnections > 100_000 {
		ps.Addf(key+".limits.tcp_max_connections", "must be 1-100000, got %d", l.TCPMaxConnections)
	}

	q := r.QueryLog
	if q.Ring < 0 || q.Ring > 1_000_000 {
		ps.Addf(key+".query_log.ring", "must be 0-1000000 entries, got %d", q.Ring)
	}
	switch q.Log {
	case "none", "blocked", "all":
	default:
		ps.Addf(key+".query_log.log", "must be one of none, blocked, all, got %q", q.Log)
	}
	if q.LogRate < 0 {
		ps.Addf(key+".query_log.log_rate", "must be 0 or more lines per second, got %v", q.LogRate)
	}
	checkRange(ps, key+".query_log.event_window", q.EventWindow.D(), time.Second, 24*time.Hour)
}

func checkRange(ps *conf.Problems, key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		ps.Addf(key, "must be between %s and %s, got %s", lo, hi, d)
	}
}

var configLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// checkConfigName checks one allowlist entry written in the config: an exact name or
// *.suffix, in A-label form. The resolver package parses list files with the same rules.
func checkConfigName(n string) error {
	n = strings.TrimSuffix(strings.ToLower(n), ".")
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 {
		return errBadName
	}
	for _, l := range strings.Split(n, ".") {
		if !configLabel.MatchString(l) {
			return errBadName
		}
	}
	return nil
}

var errBadName = errors.New("want a DNS name or *.suffix in A-label form (xn--... for IDNs)")

// Config is what the resolver serves for section r: every segment that offers dns
// becomes a client group, with its policy from resolver.segments (none: every name
// blocked) and, unless rewrite_to says otherwise, the segment's own addresses for
// rewritten names. Clients of segments without dns are in no group: REFUSED.
func (r Section) Config(segs *segment.Table) Config {
	out := Config{
		Table:           segs,
		Listen:          r.Listen,
		Upstreams:       r.Upstreams,
		UpstreamTimeout: r.UpstreamTimeout.D(),
		HealthInterval:  r.HealthInterval.D(),
		Lists:           r.Lists,
		BlockPublicDoH:  r.BlockPublicDoH,
		PrivateDomains:  r.PrivateDomains,
		ReloadInterval:  r.ReloadInterval.D(),
		LocalTTL:        r.LocalTTL.D(),
		Cache: CacheConfig{Size: r.Cache.Size, MinTTL: r.Cache.MinTTL.D(), MaxTTL: r.Cache.MaxTTL.D(),
			NegativeTTL: r.Cache.NegativeTTL.D(), Prefetch: r.Cache.Prefetch, PrefetchMinHits: r.Cache.PrefetchMinHits},
		Limits: Limits{MaxConcurrent: r.Limits.MaxConcurrent, ClientRate: r.Limits.ClientRate,
			ClientBurst: r.Limits.ClientBurst, UDPBufferSize: r.Limits.UDPBufferSize,
			TCPIdleTimeout: r.Limits.TCPIdleTimeout.D(), TCPMaxQueries: r.Limits.TCPMaxQueries,
			TCPMaxConnections: r.Limits.TCPMaxConnections},
		QueryLog: QueryLogConfig{Ring: r.QueryLog.Ring, Log: r.QueryLog.Log, LogRate: r.QueryLog.LogRate,
			EventWindow: r.QueryLog.EventWindow.D()},
	}
	for _, seg := range segs.All() {
		if !seg.Serves(segment.ServiceDNS) {
			continue
		}
		g := Segment{Name: seg.Name}
		for _, a := range seg.Addresses {
			g.RewriteTo = append(g.RewriteTo, a.Addr())
		}
		for _, pol := range r.Segments {
			if pol.Segment != seg.Name {
				continue
			}
			g.Allow, g.Rewrite, g.Block = pol.Allow, pol.Rewrite, pol.Block
			if len(pol.RewriteTo) > 0 {
				g.RewriteTo = parseAddrs(pol.RewriteTo)
			}
			g.BlockedAnswer, _ = ParseBlockedAnswer(pol.BlockedAnswer)
			g.Sinkhole = parseAddrs(pol.Sinkhole)
			g.StrictCNAME = pol.CNAME == "strict"
			g.CNAMETargets = pol.CNAMETargets
		}
		out.Segments = append(out.Segments, g)
	}
	return out
}

// parseAddrs parses addresses Validate has checked.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

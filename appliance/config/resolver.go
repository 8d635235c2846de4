package config

import (
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Resolver is the allowlisting DNS server for the managed segments. Its client groups
// are the root config's segments: resolver.segments gives each segment (by name) its
// allowlists and its answer for everything else. Addresses in no segment get REFUSED.
type Resolver struct {
	Enabled bool `yaml:"enabled"`
	// Listen are the host:port addresses served over UDP and TCP.
	Listen []string `yaml:"listen"`
	// Upstreams are tried in order; unhealthy ones last.
	Upstreams       []ResolverUpstream `yaml:"upstreams"`
	UpstreamTimeout Duration           `yaml:"upstream_timeout"`
	HealthInterval  Duration           `yaml:"health_interval"`
	// Lists are named name lists (inline names and/or list files) that segments refer to.
	Lists []ResolverList `yaml:"lists"`
	// Segments gives each segment's policy, by segment name.
	Segments []ResolverSegment `yaml:"segments"`
	// BlockPublicDoH blocks the shipped list of public DNS-over-HTTPS hostnames in every
	// segment, even when an allowlist wildcard would allow them.
	BlockPublicDoH bool `yaml:"block_public_doh"`
	// ReloadInterval is how often list files are checked for changes (SIGHUP reloads too).
	ReloadInterval Duration `yaml:"reload_interval"`
	// LocalTTL is the TTL of the answers the resolver makes itself: rewritten names and
	// blocked ones (also the SOA minimum that clients cache blocked answers for).
	LocalTTL Duration         `yaml:"local_ttl"`
	Cache    ResolverCache    `yaml:"cache"`
	Limits   ResolverLimits   `yaml:"limits"`
	QueryLog ResolverQueryLog `yaml:"query_log"`
}

// ResolverUpstream is one upstream resolver.
type ResolverUpstream struct {
	Address  string `yaml:"address"`  // host:port
	Protocol string `yaml:"protocol"` // udp (TCP on truncation; the default), tcp or tls (DNS-over-TLS)
	// TLSServerName is the name checked in the upstream's certificate (tls only).
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCAFile is a PEM bundle to trust instead of the system roots (tls only).
	TLSCAFile string `yaml:"tls_ca_file"`
}

// ResolverList is a named list of names: inline names and list files (one name a line,
// # comments). Relative file paths are relative to the config file's directory.
type ResolverList struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
	Names []string `yaml:"names"`
}

// ResolverSegment is one segment's DNS policy. A segment without one blocks every name.
type ResolverSegment struct {
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

// ResolverCache bounds the answer cache.
type ResolverCache struct {
	Size            int      `yaml:"size"` // entries; 0 disables the cache
	MinTTL          Duration `yaml:"min_ttl"`
	MaxTTL          Duration `yaml:"max_ttl"`
	NegativeTTL     Duration `yaml:"negative_ttl"` // maximum for NXDOMAIN/NODATA
	Prefetch        bool     `yaml:"prefetch"`
	PrefetchMinHits int      `yaml:"prefetch_min_hits"`
}

// ResolverLimits protects the resolver and the upstreams.
type ResolverLimits struct {
	MaxConcurrent     int      `yaml:"max_concurrent"` // queries being forwarded at once
	ClientRate        float64  `yaml:"client_rate"`    // queries per second per client address
	ClientBurst       int      `yaml:"client_burst"`
	UDPBufferSize     int      `yaml:"udp_buffer_size"` // EDNS size advertised and read buffer
	TCPIdleTimeout    Duration `yaml:"tcp_idle_timeout"`
	TCPMaxQueries     int      `yaml:"tcp_max_queries"` // per connection
	TCPMaxConnections int      `yaml:"tcp_max_connections"`
}

// ResolverQueryLog sets what is remembered and written about queries.
type ResolverQueryLog struct {
	Ring        int      `yaml:"ring"` // recent queries kept for the status page
	Log         string   `yaml:"log"`  // none, blocked or all
	LogRate     float64  `yaml:"log_rate"`
	EventWindow Duration `yaml:"event_window"` // blocked-query bursts are reported once per window
}

var listName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Validate checks the resolver section and its references to the segments of c.
func (r Resolver) Validate(key string, c *Config, ps *Problems) {
	if r.Enabled && len(r.Listen) == 0 {
		ps.Addf(key+".listen", "must list at least one host:port when enabled")
	}
	for i, l := range r.Listen {
		if err := checkHostPort(l); err != nil {
			ps.Addf(key+".listen["+itoa(i)+"]", "%v, got %q", err, l)
		}
	}
	for i, u := range r.Upstreams {
		k := key + ".upstreams[" + itoa(i) + "]"
		if err := checkHostPort(u.Address); err != nil || strings.HasPrefix(u.Address, ":") {
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
		k := key + ".lists[" + itoa(i) + "]"
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
			if err := checkListName(n); err != nil {
				ps.Addf(k+".names["+itoa(j)+"]", "%v, got %q", err, n)
			}
		}
		for j, f := range l.Files {
			if f == "" {
				ps.Addf(k+".files["+itoa(j)+"]", "must not be empty")
			}
		}
	}
	seen := map[string]bool{}
	for i, s := range r.Segments {
		k := key + ".segments[" + itoa(i) + "]"
		seg, ok := c.SegmentNamed(s.Segment)
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
					ps.Addf(k+"."+field+"["+itoa(j)+"]", "no list named %q in %s.lists", n, key)
				}
			}
		}
		for j, a := range s.RewriteTo {
			if _, err := netip.ParseAddr(a); err != nil {
				ps.Addf(k+".rewrite_to["+itoa(j)+"]", "want an IP address, got %q", a)
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
				ps.Addf(k+".sinkhole["+itoa(j)+"]", "want an IP address, got %q", a)
			}
		}
		switch s.CNAME {
		case "", "follow", "strict":
		default:
			ps.Addf(k+".cname", "must be follow or strict, got %q", s.CNAME)
		}
		for j, n := range s.CNAMETargets {
			if err := checkListName(n); err != nil {
				ps.Addf(k+".cname_targets["+itoa(j)+"]", "%v, got %q", err, n)
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

func checkRange(ps *Problems, key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		ps.Addf(key, "must be between %s and %s, got %s", lo, hi, d)
	}
}

var listLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// checkListName checks one allowlist entry written in the config: an exact name or
// *.suffix, in A-label form. The resolver package parses list files with the same rules.
func checkListName(n string) error {
	n = strings.TrimSuffix(strings.ToLower(n), ".")
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 {
		return errBadName
	}
	for _, l := range strings.Split(n, ".") {
		if !listLabel.MatchString(l) {
			return errBadName
		}
	}
	return nil
}

type configError string

func (e configError) Error() string { return string(e) }

const errBadName = configError("want a DNS name or *.suffix in A-label form (xn--... for IDNs)")

package resolver

import (
	"net/netip"
	"time"

	"github.com/patchgate/patchgate/appliance/segment"
)

// Config is what the resolver serves and how. Section.Config builds it from the
// resolver section of patchgate.yaml (section.go), which documents every field and its
// default; Section.Validate has checked it.
type Config struct {
	Listen          []string // host:port, served over UDP and TCP
	Upstreams       []Upstream
	UpstreamTimeout time.Duration // per attempt
	HealthInterval  time.Duration
	Lists           []List
	// Table says which segment a client address is in (the wiring builds it once
	// from the segments section). Segments gives the client groups their policy by
	// segment name; a client whose segment has none here is in no group: REFUSED.
	Table          *segment.Table
	Segments       []Segment
	BlockPublicDoH bool
	ReloadInterval time.Duration // how often list files are checked for changes
	LocalTTL       time.Duration // TTL of the answers made here (rewritten, blocked)
	Cache          CacheConfig
	Limits         Limits
	QueryLog       QueryLogConfig
	// PrivateDomains may answer site addresses (RFC 1918, RFC 4193, loopback,
	// link-local, 100.64/10, 0/8, the segments' clients): an entry is a name, which
	// covers itself and every name below it, or "*.suffix", only the names below.
	// Answers for other names lose such A/AAAA records (DNS rebinding); see
	// CheckPrivateDomains.
	PrivateDomains []string `yaml:"private_domains"`
}

// Upstream is one upstream resolver (resolver.upstreams[] in patchgate.yaml).
type Upstream struct {
	Address  string `yaml:"address"`  // ip:port
	Protocol string `yaml:"protocol"` // udp (TCP on truncation; the default), tcp or tls (DNS-over-TLS)
	// TLSServerName is the name checked in the upstream's certificate (tls only).
	TLSServerName string `yaml:"tls_server_name"`
	// TLSCAFile is a PEM bundle to trust instead of the system roots (tls only).
	TLSCAFile string `yaml:"tls_ca_file"`
}

// List is a named list of names (resolver.lists[] in patchgate.yaml): inline names and
// list files (one name a line, # comments). Relative file paths are relative to
// Options.BaseDir, the config file's directory.
type List struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
	Names []string `yaml:"names"`
}

// BlockedAnswer is what a blocked name gets.
type BlockedAnswer int

// Blocked answers. AnswerNXDomain is the default: NXDOMAIN with an SOA, so that clients cache
// the answer for LocalTTL (RFC 2308).
const (
	AnswerNXDomain BlockedAnswer = iota
	AnswerRefused
	AnswerNoData
	AnswerSinkhole
)

// ParseBlockedAnswer maps the config words to a BlockedAnswer; "" is AnswerNXDomain.
func ParseBlockedAnswer(s string) (BlockedAnswer, bool) {
	switch s {
	case "", "nxdomain":
		return AnswerNXDomain, true
	case "refused":
		return AnswerRefused, true
	case "nodata":
		return AnswerNoData, true
	case "sinkhole":
		return AnswerSinkhole, true
	}
	return 0, false
}

// Segment is one client group: a segment of Config.Table, by name, and its policy.
type Segment struct {
	Name string
	// Allow, Rewrite and Block name Lists.
	Allow, Rewrite, Block []string
	// RewriteTo are the appliance's addresses that rewritten names resolve to.
	RewriteTo     []netip.Addr
	BlockedAnswer BlockedAnswer
	Sinkhole      []netip.Addr
	// StrictCNAME requires every CNAME target of an allowed answer to be allowed itself
	// or to match CNAMETargets (exact names or *.suffix).
	StrictCNAME  bool
	CNAMETargets []string
}

// CacheConfig bounds the answer cache.
type CacheConfig struct {
	Size            int // entries; 0 disables the cache
	MinTTL, MaxTTL  time.Duration
	NegativeTTL     time.Duration // maximum TTL of NXDOMAIN/NODATA answers
	Prefetch        bool
	PrefetchMinHits int
}

// Limits protect the resolver and its upstreams.
type Limits struct {
	MaxConcurrent     int     // forwarded queries in flight
	ClientRate        float64 // queries per second per client address; 0 means no limit
	ClientBurst       int
	UDPBufferSize     int // read buffer and advertised EDNS size; at least 1232
	TCPIdleTimeout    time.Duration
	TCPMaxQueries     int
	TCPMaxConnections int
}

// QueryLogConfig sets what is remembered and logged.
type QueryLogConfig struct {
	Ring        int
	Log         string // "none", "blocked" or "all"
	LogRate     float64
	EventWindow time.Duration
}

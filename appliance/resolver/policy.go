package resolver

import (
	"cmp"
	_ "embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/segment"
)

// Decision is what the policy made of a query.
type Decision uint8

// Decisions, as they appear in the query log and the metrics.
const (
	Allowed   Decision = iota // forwarded upstream (or answered from the cache)
	Rewritten                 // answered with the appliance's addresses
	Blocked                   // the segment's blocked answer
	Refused                   // client in no segment, rate limited, or a query we do not serve
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case Rewritten:
		return "rewritten"
	case Blocked:
		return "blocked"
	default:
		return "refused"
	}
}

// MarshalText writes the decision's name in JSON.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// canaryName is the Firefox DNS-over-HTTPS canary: answering NXDOMAIN tells the browser
// to keep using the system resolver.
const canaryName = "use-application-dns.net"

// publicDoH is the shipped list of public DNS-over-HTTPS hostnames; go generate copies it
// from configs/allowlists/public-doh.txt (TestEmbeddedDoHListIsShippedList keeps them equal).
//
//go:generate cp ../../configs/allowlists/public-doh.txt public-doh.txt
//go:embed public-doh.txt
var publicDoH string

// policy is one compiled, immutable version of the lists and segments; a reload builds a
// new one and swaps it in whole.
type policy struct {
	table    *segment.Table        // which segment a client is in
	segments map[string]*segPolicy // by segment name
	lists    map[string]*NameSet
	files    []fileStamp // what was read, to notice changes
	loaded   time.Time
}

// segPolicy is one segment's compiled policy.
type segPolicy struct {
	name          string
	allow         *NameSet
	rewrite       *NameSet
	block         *NameSet
	cnameTargets  *NameSet
	strictCNAME   bool
	rewriteA      []net.IP // 4 bytes each, shared by the answers: never modified
	rewriteAAAA   []net.IP
	blockedAnswer BlockedAnswer
	sinkholeA     []net.IP
	sinkholeAAAA  []net.IP
	rebind        *rebinding // shared by the policy's segments
}

// fileStamp identifies a version of a list file.
type fileStamp struct {
	path  string
	mod   time.Time
	size  int64
	found bool
}

func stat(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{path: path}
	}
	return fileStamp{path: path, mod: fi.ModTime(), size: fi.Size(), found: true}
}

// changed reports whether any list file differs from when p was built.
func (p *policy) changed() bool {
	for _, f := range p.files {
		if stat(f.path) != f {
			return true
		}
	}
	return false
}

// segmentOf returns the policy of the segment whose clients include a, or nil.
func (p *policy) segmentOf(a netip.Addr) *segPolicy {
	if s, ok := p.table.Lookup(a); ok {
		return p.segments[s.Name]
	}
	return nil
}

// decide applies the segment's policy to name (canonical form). The order: the canary,
// rewrites, block lists (the public DoH list included), allowlists; anything else is
// blocked. reason says why, for the query log.
func (sp *segPolicy) decide(name string) (d Decision, reason string) {
	switch {
	case name == canaryName:
		return Blocked, "doh canary"
	case sp.rewrite.Match(name):
		return Rewritten, "rewrite"
	case sp.block.Match(name):
		return Blocked, "block list"
	case sp.allow.Match(name):
		return Allowed, "allowlist"
	}
	return Blocked, "not allowed"
}

// targetAllowed checks one CNAME target of an allowed answer: a blocked target (block
// list, canary) is never served; in strict mode the target must be allowed (or
// rewritten) itself or match the CNAME target suffixes.
func (sp *segPolicy) targetAllowed(target string) (bool, string) {
	if target == canaryName || sp.block.Match(target) {
		return false, "cname target " + target + " blocked"
	}
	if !sp.strictCNAME {
		return true, ""
	}
	if sp.allow.Match(target) || sp.rewrite.Match(target) || sp.cnameTargets.Match(target) {
		return true, ""
	}
	return false, "cname target " + target + " not allowed (strict)"
}

// loadError is a list that could not be loaded.
type loadError struct {
	list string
	err  error
}

// compile builds a policy from cfg, reading every list file. A list with a bad file or
// entry is left out, or, when prev has it, kept at its version in prev; errs has the
// first error of each such list.
func compile(cfg *Config, baseDir string, prev *policy, now time.Time) (p *policy, errs []loadError) {
	p = &policy{table: cfg.Table, segments: map[string]*segPolicy{}, lists: map[string]*NameSet{}, loaded: now}
	for _, l := range cfg.Lists {
		set, files, err := loadList(l, baseDir)
		p.files = append(p.files, files...)
		if err != nil {
			errs = append(errs, loadError{l.Name, err})
			set = newNameSet()
			if prev != nil && prev.lists[l.Name] != nil {
				set = prev.lists[l.Name]
			}
		}
		p.lists[l.Name] = set
	}
	var doh *NameSet
	if cfg.BlockPublicDoH {
		var err error
		doh, err = ParseList(strings.NewReader(publicDoH), "public-doh.txt (built in)")
		if err != nil { // a bug caught by tests
			errs = append(errs, loadError{"public-doh", err})
		}
	}
	var clients []netip.Prefix // of the client groups, site addresses to the rebinding check
	for _, s := range cfg.Segments {
		sp := &segPolicy{
			name:          s.Name,
			allow:         union(p.lists, s.Allow),
			rewrite:       union(p.lists, s.Rewrite),
			block:         union(p.lists, s.Block),
			cnameTargets:  newNameSet(),
			strictCNAME:   s.StrictCNAME,
			blockedAnswer: s.BlockedAnswer,
		}
		sp.block.merge(doh)
		for _, n := range s.CNAMETargets {
			if e, err := parseEntry(n); err == nil {
				sp.cnameTargets.add(e)
			} else {
				errs = append(errs, loadError{"segment " + s.Name, fmt.Errorf("cname_targets: %w", err)})
			}
		}
		sp.rewriteA, sp.rewriteAAAA = splitFamilies(s.RewriteTo)
		sp.sinkholeA, sp.sinkholeAAAA = splitFamilies(s.Sinkhole)
		p.segments[s.Name] = sp
		if seg, ok := cfg.Table.Named(s.Name); ok {
			clients = append(clients, seg.ClientPrefixes()...)
		}
	}
	rb := newRebinding(cfg.PrivateDomains, clients)
	for _, sp := range p.segments {
		sp.rebind = rb
	}
	return p, errs
}

// loadList reads one list's names and files. It returns the stamps of the files read
// (also of a bad one, so that only a change to it triggers the next reload).
func loadList(l List, baseDir string) (*NameSet, []fileStamp, error) {
	set := newNameSet()
	var files []fileStamp
	var first error
	for _, n := range l.Names {
		e, err := parseEntry(n)
		if err != nil {
			first = cmp.Or(first, fmt.Errorf("names: %w", err))
			continue
		}
		set.add(e)
	}
	for _, f := range l.Files {
		path := f
		if !filepath.IsAbs(path) && baseDir != "" {
			path = filepath.Join(baseDir, path)
		}
		files = append(files, stat(path))
		fs, err := readList(path)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		set.merge(fs)
	}
	return set, files, first
}

func readList(path string) (*NameSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	return ParseList(f, path)
}

func union(lists map[string]*NameSet, names []string) *NameSet {
	s := newNameSet()
	for _, n := range names {
		s.merge(lists[n])
	}
	return s
}

// splitFamilies sorts addrs into the IPv4 ones (IPv4-mapped IPv6 included) and the IPv6
// ones, as the A and AAAA records hold them.
func splitFamilies(addrs []netip.Addr) (v4, v6 []net.IP) {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a.Unmap().AsSlice())
		} else {
			v6 = append(v6, a.AsSlice())
		}
	}
	return v4, v6
}

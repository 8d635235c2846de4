// Package vendorhost answers devices that fetch updates from their vendor's host name
// (http://updates.vendor.example/firmware/x.bin), which the resolver rewrote to the
// appliance: Host + path are mapped onto a TUF target of a mirrored repository and
// served through the cache's one serving path (cache.Handler.ServeTarget: verified
// bytes only, the same gate, shaper and counters as /repos/). It also keeps the bounded
// "asked for, not available" record and issues site-CA certificates for mapped names.
// See README.md.
package vendorhost

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/tuf"
)

// Targets serves a target of a repository as GET /repos/REPO/targets/NAME would, and
// returns the status sent; *cache.Handler implements it.
type Targets interface {
	ServeTarget(w http.ResponseWriter, r *http.Request, repo, name string) int
}

// Mirror is what the mapping reads of a verified repository; *tuf.Mirror implements it.
type Mirror interface {
	Name() string
	// Targets lists the verified targets (top-level and delegated roles verified so
	// far); their Custom field may carry vendor_urls.
	Targets() []tuf.TargetInfo
	Status() tuf.Status
}

// Device says who asked, from the connection's address.
type Device struct {
	Addr    netip.Addr `json:"addr"`
	Segment string     `json:"segment,omitempty"`
	Asset   string     `json:"asset,omitempty"`
}

// Options configure a Server.
type Options struct {
	// Targets serves mapped requests (required).
	Targets Targets
	// Mirrors are the repositories whose signed vendor_urls are mapped.
	Mirrors []Mirror
	// Hosts are the configured mappings, by repository name.
	Hosts map[string][]tuf.VendorHost
	// Identify names the segment and asset of an address (nil: the address only).
	Identify func(netip.Addr) (segment, asset string)
	// AssetID names the inventory asset at an address ("" none; nil: no read-back).
	AssetID func(netip.Addr) string
	// OnOutcome learns each change of a read-back result (audit); nil: none.
	OnOutcome func(context.Context, Outcome)
	// Grace is how long after a fetch another version read from the device is "not
	// yet" rather than a mismatch (0: 24h).
	Grace time.Duration
	// AskedMax bounds the "asked for, not available" record (0: 1000).
	AskedMax   int
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Server maps vendor URLs onto targets. It is an http.Handler for listeners that serve
// vendor names only; Wrap puts it in front of another handler. Safe for concurrent use.
type Server struct {
	targets   Targets
	mirrors   []Mirror
	prefixes  map[string][]prefixMap // configured, by host, longest path prefix first
	identify  func(netip.Addr) (string, string)
	assetID   func(netip.Addr) string
	onOutcome func(context.Context, Outcome)
	grace     time.Duration
	clock     clock.Clock
	log       *slog.Logger
	met       *metrics

	mu       sync.Mutex
	signed   map[string]map[string]target // host -> URL path -> target, from signed metadata
	keys     []string                     // per mirror: the state the index was built from
	badURLs  int                          // vendor_urls entries skipped at the last build
	versions map[target]string            // signed custom "version" of each target that has one

	outcomes outcomes

	asked   *askedRecord
	unknown *onceSet
	certs   certCache
}

type prefixMap struct {
	repo, path, target string
}

type target struct{ repo, path string }

// New builds a Server; a configured host that is not a DNS name is an error naming it.
func New(o Options) (*Server, error) {
	defaults.Fill(&o.Clock, &o.Logger, nil)
	s := &Server{
		targets:   o.Targets,
		mirrors:   o.Mirrors,
		prefixes:  map[string][]prefixMap{},
		identify:  o.Identify,
		assetID:   o.AssetID,
		onOutcome: o.OnOutcome,
		grace:     cmp.Or(o.Grace, 24*time.Hour),
		clock:     o.Clock,
		log:       o.Logger,
		keys:      make([]string, len(o.Mirrors)),
		asked:     newAskedRecord(cmp.Or(o.AskedMax, 1000)),
		unknown:   &onceSet{max: 4096},
	}
	repos := make([]string, 0, len(o.Hosts))
	for repo := range o.Hosts {
		repos = append(repos, repo)
	}
	slices.Sort(repos)
	for _, repo := range repos {
		for _, vh := range o.Hosts[repo] {
			host, err := conf.HostName(vh.Host)
			if err != nil {
				return nil, fmt.Errorf("vendorhost: repository %s: %w", repo, err)
			}
			s.prefixes[host] = append(s.prefixes[host], prefixMap{repo: repo, path: cmp.Or(vh.PathPrefix, "/"), target: vh.TargetPrefix})
		}
	}
	for _, ps := range s.prefixes {
		slices.SortStableFunc(ps, func(a, b prefixMap) int { return len(b.path) - len(a.path) })
	}
	met, err := newMetrics(o.Registerer, s)
	if err != nil {
		return nil, err
	}
	s.met = met
	return s, nil
}

// RequestHost returns the canonical host name of a Host header (or a URL's host): port
// stripped, lower case, trailing dot removed, an IDN in punycode. An IP address or a
// malformed name is an error.
func RequestHost(h string) (string, error) {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") {
		return "", fmt.Errorf("host %q: an IP address, not a name", h)
	}
	return conf.HostName(h)
}

// Wrap answers requests for mapped vendor hosts itself and hands every other request to
// next (the distribution listener's own routes).
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, err := RequestHost(r.Host); err == nil && s.Mapped(host) {
			s.serve(w, r, host)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP answers a vendor-only listener: mapped hosts are served, any other host
// gets 404 without detail (logged once per host and device).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, err := RequestHost(r.Host)
	if err != nil || !s.Mapped(host) {
		s.met.requests.WithLabelValues("unknown_host").Inc()
		if s.unknown.first(r.Host + "\x00" + remoteAddr(r).String()) {
			s.log.Info("vendor listener: request for a host no repository maps", "host", r.Host, "device", remoteAddr(r).String())
		}
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.serve(w, r, host)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, host string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	t, ok := s.lookup(host, r.URL.Path)
	status := http.StatusNotFound
	if ok {
		status = s.targets.ServeTarget(w, r, t.repo, t.path)
	} else {
		http.Error(w, "not found", http.StatusNotFound)
	}
	addr := remoteAddr(r)
	d := Device{Addr: addr}
	if s.identify != nil && addr.IsValid() && (status == http.StatusNotFound || status == http.StatusOK || status == http.StatusPartialContent) {
		d.Segment, d.Asset = s.identify(addr)
	}
	if status != http.StatusNotFound {
		s.met.requests.WithLabelValues("target").Inc()
		if r.Method == http.MethodGet && (status == http.StatusOK || status == http.StatusPartialContent) {
			s.recordFetch(r.Context(), d, host, r.URL.Path, t)
		}
		return
	}
	s.met.requests.WithLabelValues("not_available").Inc()
	if s.asked.add(d, host, r.URL.Path, s.clock.Now()) {
		s.log.Info("a device asked a vendor host for a path no verified target vouches for", "host", host, "path", r.URL.Path, "device", addr.String(), "asset", d.Asset)
	}
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Mapped reports whether host (canonical form) is mapped by config or by a verified
// target's vendor_urls.
func (s *Server) Mapped(host string) bool {
	if _, ok := s.prefixes[host]; ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	_, ok := s.signed[host]
	return ok
}

// Hosts lists the mapped host names, sorted.
func (s *Server) Hosts() []string {
	s.mu.Lock()
	s.refresh()
	out := make([]string, 0, len(s.prefixes)+len(s.signed))
	for h := range s.signed {
		out = append(out, h)
	}
	s.mu.Unlock()
	for h := range s.prefixes {
		out = append(out, h)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Lookup maps host (canonical form) and an unescaped URL path onto a repository's
// target: a verified target's signed vendor_urls first, then the configured prefix
// mappings, longest path prefix first. The target path must be a valid TUF target path.
func (s *Server) Lookup(host, path string) (repo, targetPath string, ok bool) {
	t, ok := s.lookup(host, path)
	return t.repo, t.path, ok
}

func (s *Server) lookup(host, path string) (target, bool) {
	s.mu.Lock()
	s.refresh()
	t, ok := s.signed[host][path]
	s.mu.Unlock()
	if ok {
		return t, true
	}
	for _, p := range s.prefixes[host] {
		rest, ok := strings.CutPrefix(path, p.path)
		if !ok {
			continue
		}
		name := p.target + rest
		if _, err := tuf.ParseTargetPath(name); err != nil {
			return target{}, false
		}
		return target{p.repo, name}, true
	}
	return target{}, false
}

// refresh rebuilds the signed index when a mirror's verified state changed. s.mu held.
func (s *Server) refresh() {
	changed := s.signed == nil
	for i, m := range s.mirrors {
		st := m.Status()
		key := fmt.Sprint(st.VerifiedAt.UnixNano(), st.TimestampVersion, st.SnapshotVersion, st.TargetsVersion, st.DelegatedRoles)
		if key != s.keys[i] {
			s.keys[i], changed = key, true
		}
	}
	if !changed {
		return
	}
	idx := map[string]map[string]target{}
	versions := map[target]string{}
	bad := 0
	for _, m := range s.mirrors {
		for _, ti := range m.Targets() {
			if v := targetVersion(ti.Custom); v != "" {
				versions[target{m.Name(), ti.Path}] = v
			}
			urls, nbad := vendorURLs(ti.Custom)
			bad += nbad
			for _, u := range urls {
				if idx[u.host] == nil {
					idx[u.host] = map[string]target{}
				}
				if _, taken := idx[u.host][u.path]; !taken { // the first repository listed wins
					idx[u.host][u.path] = target{m.Name(), ti.Path}
				}
			}
		}
	}
	s.signed, s.badURLs, s.versions = idx, bad, versions
}

type hostPath struct{ host, path string }

// vendorURLs reads {"vendor_urls": ["http://HOST/PATH", ...]} from a target's custom
// metadata; it returns the usable ones and how many entries were not http(s) URLs with
// a DNS host name. Custom metadata without the key is no error.
func vendorURLs(custom json.RawMessage) ([]hostPath, int) {
	if len(custom) == 0 {
		return nil, 0
	}
	var c struct {
		VendorURLs []json.RawMessage `json:"vendor_urls"`
	}
	if err := json.Unmarshal(custom, &c); err != nil {
		return nil, 0 // custom is the repository's own business; only vendor_urls is ours
	}
	var out []hostPath
	bad := 0
	for _, raw := range c.VendorURLs {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			bad++
			continue
		}
		hp, err := parseVendorURL(s)
		if err != nil {
			bad++
			continue
		}
		out = append(out, hp)
	}
	return out, bad
}

func parseVendorURL(s string) (hostPath, error) {
	u, err := url.Parse(s)
	if err != nil {
		return hostPath{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return hostPath{}, fmt.Errorf("vendor url %q: want http or https", s)
	}
	host, err := RequestHost(u.Host)
	if err != nil {
		return hostPath{}, fmt.Errorf("vendor url %q: %w", s, err)
	}
	if u.Path == "" || u.Path == "/" || u.User != nil {
		return hostPath{}, fmt.Errorf("vendor url %q: want a path and no user", s)
	}
	return hostPath{host, u.Path}, nil
}

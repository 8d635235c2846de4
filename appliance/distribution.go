package appliance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/fleet"
	"github.com/patchgate/patchgate/appliance/httpapi"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/tuf"
)

// updateCache is the distribution side of the appliance: the TUF mirrors of the
// upstream repositories, the verified cache over them, and the handler endpoints pull
// updates from. Rollout wiring sets handler.Gate to a servingGate (before Run) and calls cache.Prefetch,
// Pin and Unpin.
type updateCache struct {
	mirrors []*tuf.Mirror
	cache   *cache.Cache
	handler *cache.Handler
	vendor  *vendorhost.Server // vendor host names onto handler's targets
}

// buildDistribution builds the mirrors (tuf section) and the cache (cache section),
// publishes and serves the demo upstream when tuf.demo is enabled, and mounts the
// endpoints' handler on the distribution listener at /repos/.
func (s *System) buildDistribution(ctx context.Context) error {
	log := s.log.With("svc", "updates")
	repos := s.cfg.TUF.Repositories
	if s.cfg.TUF.Demo.Enabled {
		demo, err := s.buildDemoUpstream(ctx, log)
		if err != nil {
			return err
		}
		repos = append([]tuf.Repository{demo}, repos...)
	}
	if len(s.cfg.Sources) > 0 { // publish.go: where releases of vendor candidates are signed
		site, err := s.buildSiteUpstream(ctx, log)
		if err != nil {
			return err
		}
		repos = append(repos, site)
	}
	var mirrors []*tuf.Mirror
	for _, r := range repos {
		root, err := os.ReadFile(r.Root)
		if err != nil {
			return fmt.Errorf("tuf repository %s: root: %w", r.Name, err)
		}
		m, err := tuf.NewMirror(s.mirrorConfig(r, root), tuf.Options{Logger: log, Registerer: s.registry, Clock: s.clock})
		if err != nil {
			return fmt.Errorf("tuf repository %s: %w", r.Name, err)
		}
		mirrors = append(mirrors, m)
	}
	opts := cache.Options{Logger: log, Registerer: s.registry, Clock: s.clock}
	if s.audit != nil {
		opts.OnIntegrity = cacheAudit{s.audit, s.log.With("svc", "audit")}.Integrity
	}
	if s.shaper != nil {
		opts.Upstream = s.shaper
	}
	c, err := cache.New(s.cfg.Cache.Config(s.cfg.State.Path("cache")), mirrors, opts)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, c.Close)
	h := &cache.Handler{Cache: c}
	if s.shaper != nil {
		h.Shaper = s.shaper
	}
	s.dist.mux.Handle("GET /repos/", h)
	s.leanDistribution(h)
	s.updates = &updateCache{mirrors: mirrors, cache: c, handler: h}
	s.services = append(s.services, &updatesService{u: s.updates})
	s.AddPanel(cachePanel{u: s.updates, clock: s.clock.Now})
	return s.buildVendorHosts(log, repos)
}

// buildVendorHosts answers vendor host names (Host + path mapped onto a target, by each
// repository's vendor_hosts and its targets' signed vendor_urls) on the distribution
// listener through the cache handler, and on the vendorhost section's own HTTP and
// HTTPS listeners when set; it loads or makes the site CA (STATE/vendorhost), serves its
// certificate at /vendorhost/ca.pem on both listeners, the record at
// /api/v1/vendorhost, and adds the panel.
func (s *System) buildVendorHosts(log *slog.Logger, repos []tuf.Repository) error {
	vc := s.cfg.VendorHost
	hosts := map[string][]tuf.VendorHost{}
	for _, r := range repos {
		if len(r.VendorHosts) > 0 {
			hosts[r.Name] = r.VendorHosts
		}
	}
	ms := make([]vendorhost.Mirror, len(s.updates.mirrors))
	for i, m := range s.updates.mirrors {
		ms[i] = m
	}
	vh, err := vendorhost.New(vendorhost.Options{Targets: s.updates.handler, Mirrors: ms, Hosts: hosts,
		Identify: s.identifyDevice, AssetID: s.assetIDOf, OnOutcome: s.vendorOutcome, Grace: vc.OutcomeGrace.D(), // vendoroutcome.go
		AskedMax: vc.AskedMax, Clock: s.clock, Logger: log.With("part", "vendorhost"), Registerer: s.registry})
	if err != nil {
		return err
	}
	ca, err := vendorhost.LoadCA(s.cfg.State.Path("vendorhost"), s.clock.Now())
	if err != nil {
		return err
	}
	s.updates.vendor = vh
	s.dist.srv.Handler = vh.Wrap(s.dist.mux)
	tlsConfig := vh.TLSConfig(ca)
	caPEM := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="patchgate-site-ca.pem"`)
		w.Write(ca.CertificatePEM())
	}
	s.dist.mux.HandleFunc("GET /vendorhost/ca.pem", caPEM)
	s.admin.mux.HandleFunc("GET /vendorhost/ca.pem", caPEM)
	s.admin.mux.HandleFunc("GET /api/v1/vendorhost", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, vh.Status(0))
	})
	for _, l := range []struct{ name, addr string }{{"vendor-http", vc.Listen}, {"vendor-https", vc.HTTPSListen}} {
		if l.addr == "" {
			continue
		}
		svc, err := newHTTPService(l.name, l.addr, nil, s.log)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, svc.ln.Close)
		if allow, ok := allowedSources(s.segments, "distribution"); ok {
			svc.ln = &sourceFilter{Listener: svc.ln, allow: allow, log: s.log.With("listener", l.name),
				refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "patchgate_vendorhost_" + strings.ReplaceAll(l.name, "-", "_") + "_refused_total"})}
		}
		if l.name == "vendor-https" {
			svc.srv.TLSConfig = tlsConfig
			svc.ln = tls.NewListener(svc.ln, tlsConfig)
		}
		svc.srv.Handler = vh
		s.services = append(s.services, svc)
		log.Info("vendor host names served", "listener", l.name, "addr", svc.Addr(), "hosts", vh.Hosts())
	}
	s.AddPanel(vendorHostPanel(vh))
	log.Info("site CA for vendor names over HTTPS", "certificate_sha256", ca.Fingerprint(), "download", "/vendorhost/ca.pem")
	return nil
}

// identifyDevice names the segment and inventory asset of a requester's address.
func (s *System) identifyDevice(a netip.Addr) (segment, asset string) {
	if s.assets != nil {
		asset = s.assets.NameOf(a)
	}
	return s.segments.NameOf(a), asset
}

// servingGate puts the rollout engine's serving gate in front of the cache: the cache
// asks it before serving a target and tells it afterwards what it sent, so a complete
// download counts as delivered.
type servingGate struct {
	g        *rollout.Gate
	children *fleet.Children // counts what child appliances are sent (fleet_children.go); nil: nothing
}

// Admit implements cache.Gate.
func (s servingGate) Admit(ctx context.Context, req cache.GateRequest) (cache.Decision, func(cache.Served)) {
	d, done := s.g.Admit(ctx, rollout.Request{Repo: req.Repo, Path: req.Target.Path, Addr: req.Remote.Addr(),
		Authorization: req.Header.Get("Authorization"), TLS: req.TLS})
	cd := cache.Decision{Allow: d.Allow, Status: d.Status, RetryAfter: d.RetryAfter, Reason: d.Reason}
	if d.Allow && d.Child != "" && s.children != nil {
		return cd, func(sv cache.Served) { s.children.Served(context.WithoutCancel(ctx), d.Child, sv.Bytes) }
	}
	if done == nil {
		return cd, nil
	}
	return cd, func(sv cache.Served) { done(sv.Complete) }
}

// buildDemoUpstream publishes the demo repository on first start (later starts
// re-publish it, so its timestamp never expires under a developer), serves it under
// /demo-upstream/metadata/ and /demo-upstream/targets/ on the distribution listener,
// and returns the repository that mirrors it through that listener's bound address.
func (s *System) buildDemoUpstream(ctx context.Context, log *slog.Logger) (tuf.Repository, error) {
	dir := s.cfg.TUF.Demo.Dir
	if dir == "" {
		dir = s.cfg.State.Path("tuf-demo")
	}
	p, err := PublishDemo(ctx, dir)
	if err != nil {
		return tuf.Repository{}, fmt.Errorf("tuf.demo: %w", err)
	}
	repo, _, err := s.serveOwnRepository(log, s.cfg.TUF.Demo.Name, "/demo-upstream", dir, p)
	repo.VendorHosts = s.cfg.TUF.Demo.VendorHosts
	return repo, err
}

// serveOwnRepository keeps the repository the appliance publishes in dir fresh (its
// refresher is returned), serves it under PREFIX/metadata/ and PREFIX/targets/ on the
// distribution listener, and returns the repository that mirrors it as name through
// that listener's bound address.
func (s *System) serveOwnRepository(log *slog.Logger, name, prefix, dir string, p *tuf.Publisher) (tuf.Repository, *tuf.Refresher, error) {
	r, err := s.keepFresh(name, dir)
	if err != nil {
		return tuf.Repository{}, nil, err
	}
	s.dist.mux.Handle("GET "+prefix+"/metadata/", http.StripPrefix(prefix+"/metadata/", noListing(http.FileServer(http.Dir(p.MetadataDir())))))
	s.dist.mux.Handle("GET "+prefix+"/targets/", http.StripPrefix(prefix+"/targets/", noListing(http.FileServer(http.Dir(p.TargetsDir())))))
	addr, ok := s.dist.ln.Addr().(*net.TCPAddr)
	if !ok {
		return tuf.Repository{}, nil, fmt.Errorf("tuf repository %s: distribution listener is not TCP", name)
	}
	base := "http://" + LoopbackAddr(addr.String()) + prefix
	log.Info("repository published", "dir", dir, "upstream", base, "repo", name)
	return tuf.Repository{Name: name, MetadataURL: base + "/metadata", TargetsURL: base + "/targets",
		Root: p.RootPath(), RefreshInterval: conf.Duration(time.Minute)}, r, nil
}

// LoopbackAddr is the address ("host:port") that reaches a listener on listen from the
// same machine: listen itself when it names one address, 127.0.0.1 when it listens on
// all addresses (":8080", "0.0.0.0:8080"), and ::1 when on all IPv6 addresses
// ("[::]:8080"), which ::1 reaches whether or not the socket also takes IPv4. What is
// not host:port comes back as it is.
func LoopbackAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.Unmap() == netip.IPv4Unspecified() {
		host = "127.0.0.1"
	} else if err == nil && ip == netip.IPv6Unspecified() {
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// demoTargets are the demo repository's signed targets.
var demoTargets = []struct{ path, content, custom string }{
	{"hello.txt", "Hello from Patchgate: TUF metadata vouched for every byte of this file before you got it.\n", ""},
	{"printers/labelprinter-fw-2.4.1.bin", "LBLFW 2.4.1 demo firmware image; not a real firmware.\n", `{"vendor":"demo","model":"LP-200","severity":"high"}`},
	{"pos/pos-agent-7.2.0.tar", "demo point-of-sale agent 7.2.0 update; not a real package.\n", `{"vendor":"demo","severity":"medium"}`},
}

// PublishDemo creates the demo repository in dir with `patchgate tuf`'s publisher if it
// is not there, else re-publishes it (fresh timestamp). `patchgate tuf demo` calls it
// too.
func PublishDemo(ctx context.Context, dir string) (*tuf.Publisher, error) {
	p, created, err := openOrInitRepository(ctx, dir, tuf.PublisherOptions{}, tuf.InitOptions{TimestampExpires: 7 * 24 * time.Hour})
	if err != nil || !created {
		return p, err
	}
	src, err := os.MkdirTemp("", "patchgate-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	for i, t := range demoTargets {
		f := filepath.Join(src, fmt.Sprint(i))
		if err := os.WriteFile(f, []byte(t.content), 0o600); err != nil {
			return nil, err
		}
		var custom []byte
		if t.custom != "" {
			custom = []byte(t.custom)
		}
		if _, err := p.Add(ctx, f, t.path, custom); err != nil {
			return nil, err
		}
	}
	_, err = p.Publish(ctx)
	return p, err
}

// openOrInitRepository re-publishes the repository in dir (fresh timestamp), or creates
// it (created) when there is none.
func openOrInitRepository(ctx context.Context, dir string, po tuf.PublisherOptions, io tuf.InitOptions) (p *tuf.Publisher, created bool, err error) {
	p, err = tuf.OpenPublisher(dir, po)
	if err == nil {
		_, err = p.Publish(ctx)
		return p, false, err
	}
	if _, serr := os.Stat(filepath.Join(dir, "publisher.json")); !errors.Is(serr, os.ErrNotExist) {
		return nil, false, err
	}
	p, err = tuf.InitRepository(ctx, dir, io)
	return p, err == nil, err
}

// noListing answers 404 for directories instead of listing them.
func noListing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// updatesService runs the mirrors' refresh loops and the cache's scrubber.
type updatesService struct{ u *updateCache }

func (u *updatesService) Name() string { return "updates" }

// Ready is true from the start: the cache serves whatever is verified, and a missing or
// expired repository is a health problem, not a reason to hold back READY.
func (u *updatesService) Ready() bool { return true }

func (u *updatesService) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, m := range u.u.mirrors {
		wg.Go(func() { m.Run(ctx) })
	}
	wg.Go(func() { u.u.cache.Run(ctx) })
	wg.Wait()
	return nil
}

func (u *updatesService) Health() []health.Problem {
	var out []health.Problem
	for _, m := range u.u.mirrors {
		out = append(out, m.Health()...)
	}
	return append(out, u.u.cache.Health()...)
}

// cachePanel shows the repositories, their metadata expiry and the cached objects.
type cachePanel struct {
	u     *updateCache
	clock func() time.Time
}

// CachePanel is the "cache" panel's data.
type CachePanel struct {
	Now          time.Time        `json:"now"`
	Repositories []CacheRepoRow   `json:"repositories"`
	Objects      int              `json:"objects"`
	Bytes        int64            `json:"bytes"`
	Quota        int64            `json:"quota"`
	QuotaPercent int              `json:"quota_percent"`
	InFlight     int              `json:"in_flight"`
	Recent       []CacheObjectRow `json:"recent"` // most recently used first, at most 10
}

// CacheRepoRow is one repository.
type CacheRepoRow struct {
	Name        string    `json:"name"`
	MetadataURL string    `json:"metadata_url"`
	Verified    bool      `json:"verified"`
	VerifiedAt  time.Time `json:"verified_at"`
	Expires     time.Time `json:"expires"`
	Expired     bool      `json:"expired"`
	Root        int64     `json:"root_version"`
	Timestamp   int64     `json:"timestamp_version"`
	Targets     int       `json:"targets"`
	LastAttempt time.Time `json:"last_attempt"`
	LastError   string    `json:"last_error,omitempty"`
}

// CacheObjectRow is one stored object.
type CacheObjectRow struct {
	Key      string    `json:"sha256"`
	Size     int64     `json:"size"`
	Repo     string    `json:"repo"`
	Path     string    `json:"path"`
	LastUsed time.Time `json:"last_used"`
}

func (p cachePanel) Panel(context.Context) web.Panel {
	st := p.u.cache.Status()
	d := CachePanel{Now: p.clock(), Objects: st.Objects, Bytes: st.Bytes, Quota: st.QuotaBytes, InFlight: st.InFlight}
	if st.QuotaBytes > 0 {
		d.QuotaPercent = int(min(100, 100*st.Bytes/st.QuotaBytes))
	}
	for _, m := range p.u.mirrors {
		ms := m.Status()
		d.Repositories = append(d.Repositories, CacheRepoRow{
			Name: ms.Name, MetadataURL: ms.MetadataURL, Verified: ms.Verified, VerifiedAt: ms.VerifiedAt,
			Expires: ms.Expires, Expired: ms.Expired, Root: ms.RootVersion, Timestamp: ms.TimestampVersion,
			Targets: ms.Targets, LastAttempt: ms.LastAttempt, LastError: ms.LastError,
		})
	}
	for i, o := range p.u.cache.Objects() {
		if i == 10 {
			break
		}
		d.Recent = append(d.Recent, CacheObjectRow{Key: o.Key, Size: o.Size, Repo: o.Repo, Path: o.Path, LastUsed: o.LastUsed})
	}
	return web.Panel{ID: "cache", Title: "Update cache", Data: d}
}

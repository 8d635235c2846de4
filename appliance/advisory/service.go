package advisory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/periodic"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/tuf"
)

// DefaultRematch is how often the inventory is matched again without new advisories
// (devices and packages change too).
const DefaultRematch = 15 * time.Minute

// Options are what a Service needs besides its section.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Registerer takes the metrics (nil: a private registry).
	Registerer prometheus.Registerer
	// Client fetches feeds (nil: the appliance's bounded upstream client).
	Client *http.Client
	// Pace, if set, paces every body read (the upstream bandwidth cap).
	Pace      func(ctx context.Context, r io.Reader) io.Reader
	UserAgent string
	// ConfigDir is where relative key_file paths are found.
	ConfigDir string
	// Assets lists the inventory as matching sees it (nil: nothing is matched).
	Assets Assets
	// Releases lists the staged releases and the CVEs each fixes (may be nil).
	Releases Releases
	// Deadline is the SLA deadline of an open finding (may be nil: none).
	Deadline func(f Finding) time.Time
	// Exploited, if set, is told of findings newly open and exploited (once each),
	// after they are stored.
	Exploited func(ctx context.Context, fs []Finding)
	// Rematch is how often matching runs without new data (default DefaultRematch).
	Rematch time.Duration
	// KEV, if set, is given every KEV catalog taken in (fetched or imported), after it
	// is stored: the wiring marks the releases fixing its CVEs known-exploited.
	KEV func(ctx context.Context, k *KEV)
}

// Assets is the inventory (the wiring adapts appliance/inventory).
type Assets interface {
	MatchAssets(ctx context.Context) ([]Asset, error)
}

// Release is a staged release as matching links it: what it is called and which CVEs
// it fixes.
type Release struct {
	ID   string
	Name string
	CVEs []string
}

// Releases gives the staged releases (the wiring adapts the rollout engine).
type Releases interface {
	FixReleases(ctx context.Context) ([]Release, error)
}

// FeedStatus is a feed's state for the API and the status page.
type FeedStatus struct {
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	URL         string     `json:"url"`
	Result      string     `json:"result"` // never, ok, refused
	Reason      string     `json:"reason,omitempty"`
	Error       string     `json:"error,omitempty"`
	LastCheck   *time.Time `json:"last_check,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	// LastError and LastErrorAt are the latest refusal's, kept after a later success.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Documents counts what the feed's stored delivery holds: advisories (a CSAF
	// document or an OSV record may hold several), or KEV entries; also after a
	// restart.
	Documents int `json:"documents"`
	// Fetched and Pending count the CSAF documents the last good fetch took and, past
	// max_documents, left for the next one (changes.csv).
	Fetched int `json:"fetched,omitempty"`
	Pending int `json:"pending,omitempty"`
	// NextRun is when Run fetches the feed next (nil while fetching or not running).
	NextRun *time.Time `json:"next_run,omitempty"`
	// ScoreErrors name the advisories of the last good fetch whose CVSS vector did not
	// parse (kept, unscored).
	ScoreErrors []string `json:"score_errors,omitempty"`
}

type feed struct {
	cfg     Feed
	keys    *supply.Keyring
	trigger periodic.Ask
	mu      sync.Mutex // guards st; the fetch itself is serialised by fetchMu
	fetchMu sync.Mutex
	st      FeedStatus
}

// Service fetches the feeds on their intervals, takes imports, and keeps the findings
// of matching them against the inventory. It is safe for concurrent use; Run's
// goroutines end with its context.
type Service struct {
	db         *store.DB
	sec        Section
	opts       Options
	log        *slog.Logger
	met        *metrics
	fetch      *fetcher
	feeds      []*feed
	importKeys []*supply.Keyring // CSAF imports may be signed by any of these
	rematch    periodic.Ask
	matchMu    sync.Mutex // one matching run at a time
}

// Open applies the advisory migrations to db and reads the pinned keys.
func Open(ctx context.Context, db *store.DB, sec Section, opts Options) (*Service, error) {
	sec = sec.Defaults()
	defaults.Fill(&opts.Clock, &opts.Logger, &opts.Registerer)
	if opts.Client == nil {
		opts.Client = tuf.NewHTTPClient()
	}
	if opts.Rematch <= 0 {
		opts.Rematch = DefaultRematch
	}
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("advisory: metrics: %w", err)
	}
	s := &Service{db: db, sec: sec, opts: opts, log: opts.Logger, met: m, rematch: periodic.NewAsk(),
		fetch: &fetcher{client: opts.Client, pace: opts.Pace, userAgent: opts.UserAgent, limit: int64(sec.MaxSize)}}
	for _, c := range sec.Feeds {
		f := &feed{cfg: c, trigger: periodic.NewAsk(), st: FeedStatus{Name: c.Name, Kind: c.Kind, URL: c.URL, Result: "never"}}
		if f.keys, err = supply.LoadKeyring(c.Key, c.KeyFile, opts.ConfigDir); err != nil {
			return nil, fmt.Errorf("advisory: feed %s: %w", c.Name, err)
		}
		if f.keys != nil {
			s.importKeys = append(s.importKeys, f.keys)
		}
		s.feeds = append(s.feeds, f)
	}
	if err := s.storedStatus(ctx); err != nil {
		return nil, err
	}
	if sec.ImportKeyFile != "" {
		k, err := supply.LoadKeyring("", sec.ImportKeyFile, opts.ConfigDir)
		if err != nil {
			return nil, fmt.Errorf("advisory: import_key_file: %w", err)
		}
		s.importKeys = append(s.importKeys, k)
	}
	return s, nil
}

// Name is the service's name on the status page.
func (s *Service) Name() string { return "advisory" }

// Ready is true: a feed that cannot be fetched is a health problem, not unreadiness.
func (s *Service) Ready() bool { return true }

// Health names each feed whose last fetch was refused; its previous data is kept.
func (s *Service) Health() []health.Problem {
	return health.List(s.feeds, func(f *feed) (health.Problem, bool) {
		st := f.status()
		if st.Result != "refused" {
			return health.Problem{}, false
		}
		p := health.Problem{Code: "advisory-feed-refused", Severity: health.Error,
			Text: fmt.Sprintf("advisory feed %s refused (%s): %s; the previous data is kept", st.Name, st.Reason, st.Error)}
		if st.Reason == ReasonNetwork {
			p.Code, p.Severity = "advisory-feed-unavailable", health.Warning
		}
		return p, true
	})
}

func (f *feed) status() FeedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// Feeds returns every feed's status, in config order.
func (s *Service) Feeds() []FeedStatus {
	out := make([]FeedStatus, len(s.feeds))
	for i, f := range s.feeds {
		out[i] = f.status()
	}
	return out
}

// Sources lists what is stored: each feed's and each import's last good delivery.
func (s *Service) Sources(ctx context.Context) ([]SourceInfo, error) {
	_, infos, err := loadCorpus(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("advisory: sources: %w", err)
	}
	return infos, nil
}

// ErrUnknownFeed is returned for a feed name not configured.
var ErrUnknownFeed = errors.New("advisory: no such feed")

// Run fetches every feed now and then on its interval (or at once when FetchSoon
// asks), and matches again after each delivery and every Rematch, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range s.feeds {
		wg.Go(func() {
			periodic.Loop{Clock: s.opts.Clock, Every: f.cfg.Interval.D(), Ask: f.trigger, Due: f.setNext}.Run(ctx, func(ctx context.Context, _ bool) {
				s.Fetch(ctx, f.cfg.Name) //nolint:errcheck // the outcome is in the feed's status
			})
		})
	}
	wg.Go(func() {
		periodic.Loop{Clock: s.opts.Clock, Every: s.opts.Rematch, Ask: s.rematch}.Run(ctx, func(ctx context.Context, _ bool) {
			if err := s.Match(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("advisory: matching failed", "err", err)
			}
		})
	})
	wg.Wait()
	return nil
}

// MatchSoon asks Run to match again at once (it returns at once).
func (s *Service) MatchSoon() { s.rematch.Soon() }

func (s *Service) feed(name string) *feed {
	for _, f := range s.feeds {
		if f.cfg.Name == name {
			return f
		}
	}
	return nil
}

// Fetch fetches the named feed now, bounded by the section's timeout, stores what it
// delivered when the whole of it was good (else keeps the previous data) and matches
// again. It returns the feed's status afterwards.
func (s *Service) Fetch(ctx context.Context, name string) (FeedStatus, error) {
	f := s.feed(name)
	if f == nil {
		return FeedStatus{}, fmt.Errorf("%w: %q", ErrUnknownFeed, name)
	}
	f.fetchMu.Lock()
	defer f.fetchMu.Unlock()
	if ctx.Err() != nil {
		return f.status(), ctx.Err()
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-cctx.Done():
		case <-s.opts.Clock.After(s.sec.Timeout.D()):
			cancel(refuse(ReasonNetwork, "fetch did not finish within %s", s.sec.Timeout.D()))
		}
	}()
	var d Data
	var err error
	switch f.cfg.Kind {
	case KindKEV:
		d, err = s.fetchKEV(cctx, f.cfg)
	case KindCSAF:
		d, err = s.fetchCSAF(cctx, f.cfg, f.keys)
	case KindOSV:
		d, err = s.fetchOSV(cctx, f.cfg)
	}
	if ctx.Err() != nil {
		return f.status(), ctx.Err() // the appliance is stopping: not the feed's fault
	}
	now := s.opts.Clock.Now()
	if err == nil {
		if serr := saveData(ctx, s.db, f.cfg.Name, d, now); serr != nil {
			err = fmt.Errorf("advisory: store %s: %w", f.cfg.Name, serr)
		}
	}
	f.mu.Lock()
	f.st.LastCheck, f.st.NextRun = &now, nil
	if err == nil {
		f.st.Result, f.st.Reason, f.st.Error, f.st.LastSuccess = "ok", "", "", &now
		f.st.Documents, f.st.Fetched, f.st.Pending = len(d.Advisories)+len(d.KEV), d.fetched, d.pending
		f.st.ScoreErrors = scoreErrors(d)
	} else {
		f.st.Result, f.st.Reason, f.st.Error = "refused", reasonOf(err), err.Error()
		f.st.LastError, f.st.LastErrorAt = f.st.Error, &now
	}
	st := f.st
	f.mu.Unlock()
	if err != nil {
		s.met.fetches.WithLabelValues(f.cfg.Name, "refused").Inc()
		s.log.Warn("advisory: feed refused; previous data kept", "feed", f.cfg.Name, "reason", st.Reason, "err", err)
		return st, nil
	}
	if len(st.ScoreErrors) > 0 {
		s.log.Warn("advisory: CVSS vectors that do not parse; those advisories are kept unscored", "feed", f.cfg.Name, "errors", st.ScoreErrors)
	}
	s.met.fetches.WithLabelValues(f.cfg.Name, "ok").Inc()
	s.met.pending.WithLabelValues(f.cfg.Name).Set(float64(st.Pending))
	s.met.lastSuccess.WithLabelValues(f.cfg.Name).Set(float64(now.Unix()))
	s.tookKEV(ctx, d)
	s.MatchSoon()
	return st, nil
}

// tookKEV hands the KEV catalog in d, if any, to Options.KEV.
func (s *Service) tookKEV(ctx context.Context, d Data) {
	if len(d.KEV) == 0 {
		return
	}
	// Two checks, not one ||: staticcheck v0.6.1's S1009 panics on "f == nil || len(x)"
	// with f a func ("unhandled case *types.Signature").
	if s.opts.KEV == nil {
		return
	}
	k := &KEV{Version: d.Version, Entries: make(map[string]KEVEntry, len(d.KEV))}
	for _, e := range d.KEV {
		k.Entries[e.CVE] = e
	}
	s.opts.KEV(ctx, k)
}

// FetchSoon asks Run to fetch the named feed at once (it returns before the fetch).
func (s *Service) FetchSoon(name string) error {
	f := s.feed(name)
	if f == nil {
		return fmt.Errorf("%w: %q", ErrUnknownFeed, name)
	}
	f.trigger.Soon()
	return nil
}

// AgentPackages records the packages an agent reported, with the OSV ecosystem of its
// OS ("" when it has none: its packages are then not matched).
func (s *Service) AgentPackages(ctx context.Context, agentID string, ps PackageSet) error {
	if agentID == "" {
		return errors.New("advisory: agent packages: no agent id")
	}
	if err := savePackages(ctx, s.db, agentID, ps, s.opts.Clock.Now()); err != nil {
		return fmt.Errorf("advisory: agent packages: %w", err)
	}
	return nil
}

// Match matches the inventory against every stored advisory and updates the
// findings: new matches open, matches gone close (keeping the release that fixes
// them). Findings newly open and exploited go to Options.Exploited.
func (s *Service) Match(ctx context.Context) error {
	if s.opts.Assets == nil {
		return nil
	}
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	corpus, _, err := loadCorpus(ctx, s.db)
	if err != nil {
		return fmt.Errorf("advisory: match: %w", err)
	}
	assets, err := s.opts.Assets.MatchAssets(ctx)
	if err != nil {
		return fmt.Errorf("advisory: match: assets: %w", err)
	}
	pkgs, err := loadPackages(ctx, s.db)
	if err != nil {
		return fmt.Errorf("advisory: match: packages: %w", err)
	}
	for i, a := range assets {
		if ps, ok := pkgs[a.AgentID]; ok && a.AgentID != "" {
			assets[i].Ecosystem, assets[i].Packages = ps.Ecosystem, ps.Packages
		}
	}
	var rels []Release
	if s.opts.Releases != nil {
		if rels, err = s.opts.Releases.FixReleases(ctx); err != nil {
			return fmt.Errorf("advisory: match: releases: %w", err)
		}
	}
	matches := MatchAll(assets, corpus)
	now := s.opts.Clock.Now()
	var fresh []Finding
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		old, err := listFindings(ctx, tx, "")
		if err != nil {
			return err
		}
		type key struct{ asset, vuln string }
		byKey := make(map[key]Finding, len(old))
		for _, f := range old {
			byKey[key{f.AssetID, f.Vuln}] = f
		}
		seen := map[key]bool{}
		for _, m := range matches {
			k := key{m.AssetID, m.Vuln}
			seen[k] = true
			f, had := byKey[k]
			if !had || !f.ClosedAt.IsZero() {
				f = Finding{FirstSeen: now}
			}
			f.Match, f.LastSeen = m, now
			if r, ok := fixRelease(rels, m.CVEs); ok {
				f.ReleaseID, f.ReleaseName = r.ID, r.Name
			}
			if f.Exploited && !f.Ambiguous && !f.notified {
				f.notified = true
				fresh = append(fresh, f)
			}
			if err := putFinding(ctx, tx, f); err != nil {
				return err
			}
		}
		for _, f := range old {
			if seen[key{f.AssetID, f.Vuln}] || !f.ClosedAt.IsZero() {
				continue
			}
			f.ClosedAt = now
			if r, ok := fixRelease(rels, f.CVEs); ok && f.ReleaseID == "" {
				f.ReleaseID, f.ReleaseName = r.ID, r.Name
			}
			if err := putFinding(ctx, tx, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("advisory: match: %w", err)
	}
	s.met.matchRuns.Inc()
	s.countFindings(matches)
	if len(fresh) > 0 && s.opts.Exploited != nil {
		for i := range fresh {
			s.withDeadline(&fresh[i], now)
		}
		s.opts.Exploited(ctx, fresh)
	}
	return nil
}

// fixRelease is the newest staged release fixing one of cves.
func fixRelease(rels []Release, cves []string) (Release, bool) {
	var best Release
	found := false
	for _, r := range rels {
		if !slices.ContainsFunc(cves, func(c string) bool { return slices.Contains(r.CVEs, c) }) {
			continue
		}
		if !found || newer(r.ID, best.ID) {
			best, found = r, true
		}
	}
	return best, found
}

// newer compares release ids numerically when they are numbers.
func newer(a, b string) bool {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return x > y
	}
	return a > b
}

func (s *Service) countFindings(ms []Match) {
	s.met.findings.Reset()
	for _, m := range ms {
		state := "open"
		if m.Ambiguous {
			state = "ambiguous"
		}
		s.met.findings.WithLabelValues(state, m.Severity).Inc()
		if m.Exploited {
			s.met.findings.WithLabelValues(state, "exploited").Inc()
		}
	}
}

func (s *Service) withDeadline(f *Finding, now time.Time) {
	if f.ClosedAt.IsZero() && !f.Ambiguous && s.opts.Deadline != nil {
		f.Deadline = s.opts.Deadline(*f)
		f.Overdue = !f.Deadline.IsZero() && now.After(f.Deadline)
	}
}

// Findings lists the findings (of one asset when assetID is not ""), open and
// ambiguous ones, and closed ones too when closed is set; each open one with its
// deadline.
func (s *Service) Findings(ctx context.Context, assetID string, closed bool) ([]Finding, error) {
	where, args := "WHERE 1=1", []any{}
	if assetID != "" {
		where, args = where+" AND asset_id = ?", append(args, assetID)
	}
	if !closed {
		where += " AND closed_at = ''"
	}
	fs, err := listFindings(ctx, s.db, where, args...)
	if err != nil {
		return nil, fmt.Errorf("advisory: findings: %w", err)
	}
	now := s.opts.Clock.Now()
	for i := range fs {
		s.withDeadline(&fs[i], now)
	}
	return fs, nil
}

package tuf

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// MirrorConfig configures one upstream repository.
type MirrorConfig struct {
	// Name identifies the repository in URLs (/repos/NAME/...), metrics and
	// logs.
	Name string
	// MetadataURL is the upstream base URL of the metadata files.
	MetadataURL string
	// TargetsURL is the upstream base URL of the target files.
	TargetsURL string
	// TrustedRoot is the pinned root.json, installed out of band.
	TrustedRoot []byte
	// StateDir holds this repository's verified metadata; one per Mirror.
	StateDir string
	// RefreshInterval is the time between refreshes in Run (default 5m).
	RefreshInterval time.Duration
	// UpstreamBytesPerSecond caps target downloads from the upstream,
	// summed over all of them (0: no cap).
	UpstreamBytesPerSecond int64
	// MaxDelegatedRoles bounds the delegated roles a search for a
	// delegated role's metadata walks (default 4096); a target lookup visits
	// at most 32, the specification's limit.
	MaxDelegatedRoles int
	// HTTPClient is the upstream client (default NewHTTPClient()). Never
	// http.DefaultClient.
	HTTPClient *http.Client
	// Retries is how often a failed metadata GET is retried (default 3).
	Retries int
	// RetryBackoff is the first wait between retries, doubled each time
	// (default 500ms).
	RetryBackoff time.Duration
	// MetadataTimeout bounds one metadata GET (default 30s).
	MetadataTimeout time.Duration
	// UserAgent is sent upstream (default "patchgate").
	UserAgent string
}

// Options are a Mirror's collaborators.
type Options struct {
	Logger     *slog.Logger          // required
	Registerer prometheus.Registerer // required
	Clock      clock.Clock           // nil: the real clock
}

// Mirror keeps the verified metadata of one upstream TUF repository. It is
// safe for concurrent use; lookups never block on a refresh. Run refreshes
// it until its ctx is done; the caller that started Run stops it.
type Mirror struct {
	cfg    MirrorConfig
	log    *slog.Logger
	clock  clock.Clock
	t      *transport
	pace   *pacer
	met    *mirrorMetrics
	pinned []byte

	refreshMu sync.Mutex // one refresh at a time
	state     atomic.Pointer[state]
	prevFiles atomic.Pointer[map[string][]byte] // versioned files of the state before
	anchor    atomic.Pointer[anchor]            // newest verified root chain, timestamp, snapshot

	mu          sync.Mutex
	lastAttempt time.Time
	lastErr     error
	loadErr     error // the stored state could not be loaded at start
}

const (
	stateFile  = "verified.json"
	anchorFile = "trusted.json"
	clientDir  = "client"
	maxTargets = 5_000_000 // go-tuf's default TargetsMaxLength
)

// NewMirror returns a Mirror for cfg and loads the verified metadata stored
// in cfg.StateDir by an earlier run, if any. It does no network I/O.
func NewMirror(cfg MirrorConfig, opts Options) (*Mirror, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/ \t\n") {
		return nil, fmt.Errorf("tuf: new mirror: bad name %q", cfg.Name)
	}
	for k, v := range map[string]string{"metadata URL": cfg.MetadataURL, "targets URL": cfg.TargetsURL} {
		if !conf.IsHTTPURL(v) {
			return nil, fmt.Errorf("tuf: new mirror %s: %s %q: want an http(s) URL", cfg.Name, k, v)
		}
	}
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("tuf: new mirror %s: no state directory", cfg.Name)
	}
	if opts.Logger == nil || opts.Registerer == nil {
		return nil, fmt.Errorf("tuf: new mirror %s: logger and registerer are required", cfg.Name)
	}
	cfg.RefreshInterval = cmp.Or(cfg.RefreshInterval, 5*time.Minute)
	cfg.MaxDelegatedRoles = cmp.Or(cfg.MaxDelegatedRoles, 4096)
	cfg.Retries = cmp.Or(cfg.Retries, 3)
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, 500*time.Millisecond)
	cfg.MetadataTimeout = cmp.Or(cfg.MetadataTimeout, 30*time.Second)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, "patchgate")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	m := &Mirror{
		cfg:    cfg,
		log:    opts.Logger.With("repo", cfg.Name),
		clock:  clk,
		pinned: cfg.TrustedRoot,
		t: &transport{client: cfg.HTTPClient, clock: clk, retries: cfg.Retries, backoff: cfg.RetryBackoff,
			metadataTimeout: cfg.MetadataTimeout, userAgent: cfg.UserAgent},
	}
	if cfg.UpstreamBytesPerSecond > 0 {
		m.pace = &pacer{rate: cfg.UpstreamBytesPerSecond, clock: clk}
	}
	if _, _, err := verifyChain(cfg.TrustedRoot, nil, clk.Now()); err != nil {
		return nil, fmt.Errorf("tuf: new mirror %s: trusted root: %w", cfg.Name, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, clientDir), 0o700); err != nil {
		return nil, fmt.Errorf("tuf: new mirror %s: %w", cfg.Name, err)
	}
	met, err := newMirrorMetrics(opts.Registerer, cfg.Name, m.expiredMetric)
	if err != nil {
		return nil, fmt.Errorf("tuf: new mirror %s: metrics: %w", cfg.Name, err)
	}
	m.met = met
	m.load()
	return m, nil
}

// load restores the verified state stored by an earlier run, and the
// anchor. The state is re-verified against the pinned root as of the time it
// was verified; expiry is checked against the clock when it is used. The
// anchor is the newer of STATE/trusted.json and the served state, field by
// field, so losing either file (or go-tuf's client directory) never lowers
// the rollback floor below what the other says.
func (m *Mirror) load() {
	floor := anchor{}
	p, err := readJSON[persisted](filepath.Join(m.cfg.StateDir, stateFile))
	if err == nil && p != nil {
		var tm *trustedmetadata.TrustedMetadata
		tm, *p, err = verifyAll(m.pinned, *p, p.VerifiedAt, nil)
		if err == nil {
			m.setState(newState(m.pinned, *p, tm, maxLookupRoles))
			m.log.Info("loaded verified metadata", "verified_at", p.VerifiedAt, "expires", m.state.Load().expires)
			floor = anchor{Roots: p.Roots, Timestamp: p.Timestamp, Snapshot: p.Snapshot}
		} else if _, roots, cerr := verifyChain(m.pinned, p.Roots, p.VerifiedAt); cerr == nil {
			floor.Roots = roots // keep what can be kept: the verified root chain
		}
	}
	if err != nil {
		m.loadErr = fmt.Errorf("stored metadata: %w", err)
		m.log.Warn("stored metadata not usable", "err", err)
	}
	a, aerr := readJSON[anchor](filepath.Join(m.cfg.StateDir, anchorFile))
	if aerr == nil && a != nil {
		var v anchor
		if v, aerr = verifyAnchor(m.pinned, *a, m.clock.Now()); aerr == nil {
			floor = newerAnchor(floor, v)
		}
	}
	if aerr != nil {
		m.log.Warn("stored trusted metadata not usable; the served state is the rollback floor", "err", aerr)
	}
	m.anchor.Store(&floor)
}

// newerAnchor returns, field by field, the newer of two verified anchors.
func newerAnchor(a, b anchor) anchor {
	out := a
	if len(b.Roots) > len(a.Roots) {
		out.Roots = b.Roots
	}
	ats, asnap := a.versions()
	bts, bsnap := b.versions()
	if bts > ats {
		out.Timestamp = b.Timestamp
	}
	if bsnap > asnap {
		out.Snapshot = b.Snapshot
	}
	return out
}

// advance records what verified in a refresh (next: the root chain,
// timestamp and snapshot go-tuf accepted, even when a later role failed) as
// the new anchor, after verifying it again from the pinned root and checking
// that no version went below floor. It persists the anchor crash-safely.
func (m *Mirror) advance(floor, next anchor, now time.Time) error {
	v, err := verifyAnchor(m.pinned, next, now)
	if err != nil {
		return fmt.Errorf("trusted metadata: %w", err)
	}
	v = newerAnchor(floor, v)
	if len(v.Roots) == len(floor.Roots) && bytes.Equal(v.Timestamp, floor.Timestamp) && bytes.Equal(v.Snapshot, floor.Snapshot) {
		return nil
	}
	if err := writeJSON(filepath.Join(m.cfg.StateDir, anchorFile), v); err != nil {
		return fmt.Errorf("persist trusted metadata: %w", err)
	}
	m.anchor.Store(&v)
	return nil
}

func (m *Mirror) setState(s *state) {
	if old := m.state.Load(); old != nil {
		prev := map[string][]byte{}
		for name, data := range old.files {
			if n, err := ParseMetadataName(name); err == nil && n.Version > 0 {
				prev[name] = data
			}
		}
		m.prevFiles.Store(&prev)
	}
	m.state.Store(s)
	tm := s.trusted
	m.met.expiry.Set(float64(s.expires.Unix()))
	m.met.versions.WithLabelValues(metadata.ROOT).Set(float64(tm.Root.Signed.Version))
	m.met.versions.WithLabelValues(metadata.TIMESTAMP).Set(float64(tm.Timestamp.Signed.Version))
	m.met.versions.WithLabelValues(metadata.SNAPSHOT).Set(float64(tm.Snapshot.Signed.Version))
	m.met.versions.WithLabelValues(metadata.TARGETS).Set(float64(tm.Targets[metadata.TARGETS].Signed.Version))
	m.met.targets.Set(float64(s.numTargets))
	m.met.rolesMissing.Set(0)
}

func (m *Mirror) expiredMetric() float64 {
	s := m.state.Load()
	if s == nil || m.clock.Now().After(s.expires) {
		return 1
	}
	return 0
}

// Name returns the repository's name.
func (m *Mirror) Name() string { return m.cfg.Name }

// Run refreshes the metadata now and then every RefreshInterval (sooner,
// with backoff, after a failure) until ctx is done. It logs failures and
// returns nil when ctx is done.
func (m *Mirror) Run(ctx context.Context) error {
	backoff := 5 * time.Second
	for {
		delay := m.cfg.RefreshInterval
		if err := m.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Warn("metadata refresh failed", "err", err)
			delay = min(backoff, delay)
			backoff = min(2*backoff, 5*time.Minute)
		} else {
			backoff = 5 * time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.clock.After(delay):
		}
	}
}

// Refresh brings the verified metadata up to date with the upstream: root
// chain, timestamp, snapshot, top-level targets (go-tuf's updater, a fresh
// one each time); delegated roles are resolved later, by lookups. What
// verified advances the trusted metadata (the rollback floor) even when a
// later role fails; the served state is replaced only once all of it
// verified, and both are persisted crash-safely. On failure the last
// verified state stays in service.
func (m *Mirror) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	start := m.clock.Now()
	err := m.refresh(ctx, start)
	m.met.refreshDuration.Observe(m.clock.Now().Sub(start).Seconds())
	m.mu.Lock()
	m.lastAttempt = start
	m.lastErr = err
	m.mu.Unlock()
	if err != nil {
		m.met.refreshes.WithLabelValues("error").Inc()
		return fmt.Errorf("tuf: refresh %s: %w", m.cfg.Name, err)
	}
	m.met.refreshes.WithLabelValues("ok").Inc()
	m.met.lastSuccess.Set(float64(start.Unix()))
	return nil
}

func (m *Mirror) refresh(ctx context.Context, now time.Time) error {
	floor := *m.anchor.Load()
	latest := m.pinned
	if len(floor.Roots) > 0 {
		latest = floor.Roots[len(floor.Roots)-1]
	}
	latestRoot, err := metadata.Root().FromBytes(latest)
	if err != nil {
		return err
	}
	// go-tuf's client directory is a scratch copy of the anchor: seeded from
	// it each time, so its rollback checks hold even when the directory was
	// lost.
	dir := filepath.Join(m.cfg.StateDir, clientDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{metadata.TIMESTAMP: floor.Timestamp, metadata.SNAPSHOT: floor.Snapshot} {
		if len(data) > 0 {
			if err := atomicfile.Write(filepath.Join(dir, name+".json"), data, 0o600); err != nil {
				return fmt.Errorf("seed %s: %w", name, err)
			}
		}
	}
	f := &refreshFetcher{ctx: ctx, t: m.t, roots: map[int64][]byte{}}
	cfg, err := config.New(m.cfg.MetadataURL, latest)
	if err != nil {
		return err
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = dir
	cfg.RemoteTargetsURL = m.cfg.TargetsURL
	cfg.Fetcher = f
	cfg.PrefixTargetsWithHash = true
	up, err := updater.New(cfg)
	if err != nil {
		return err
	}
	up.UnsafeSetRefTime(now)
	refreshErr := up.Refresh()

	// Advance the anchor with whatever verified, as the client workflow
	// does, even if a later role failed: go-tuf writes a file to its
	// directory only once it verified.
	trusted := up.GetTrustedMetadataSet()
	next := anchor{Roots: slices.Clone(floor.Roots)}
	for v := latestRoot.Signed.Version + 1; trusted.Root != nil && v <= trusted.Root.Signed.Version; v++ {
		raw, ok := f.roots[v]
		if !ok {
			return fmt.Errorf("root version %d verified but not recorded", v)
		}
		next.Roots = append(next.Roots, raw)
	}
	files := map[string][]byte{}
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if data, err := os.ReadFile(filepath.Join(dir, role+".json")); err == nil {
			files[role] = data
		}
	}
	next.Timestamp, next.Snapshot = files[metadata.TIMESTAMP], files[metadata.SNAPSHOT]
	if err := m.advance(floor, next, now); err != nil {
		return errors.Join(refreshErr, err)
	}
	if refreshErr != nil {
		return refreshErr
	}

	p := persisted{VerifiedAt: now, Roots: next.Roots, Timestamp: files[metadata.TIMESTAMP], Snapshot: files[metadata.SNAPSHOT],
		Roles: []persistedRole{{Name: metadata.TARGETS, Parent: metadata.ROOT, Data: files[metadata.TARGETS]}}}
	// Verify everything again in our own trusted set, from the pinned root
	// and against the anchor as it was before this refresh: what we persist
	// and serve is exactly what verified here, and never below the floor.
	tm, p, err := verifyAll(m.pinned, p, now, &floor)
	if err != nil {
		return fmt.Errorf("re-verify: %w", err)
	}
	s := newState(m.pinned, p, tm, maxLookupRoles)
	old := m.state.Load()
	// Nothing new upstream (same timestamp, same root chain): the stored state is
	// still this one, verified at an earlier time; skip rewriting it.
	unchanged := old != nil && bytes.Equal(old.p.Timestamp, p.Timestamp) && len(old.p.Roots) == len(p.Roots)
	if unchanged {
		return nil // keep the served state and the delegated roles it verified
	}
	if err := writeJSON(filepath.Join(m.cfg.StateDir, stateFile), p); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	m.setState(s)
	var oldSnap *metadata.Metadata[metadata.SnapshotType]
	if old != nil {
		oldSnap = old.trusted.Snapshot
	}
	m.pruneRoles(tm.Snapshot, oldSnap)
	m.log.Info("metadata refreshed", "timestamp", tm.Timestamp.Signed.Version, "snapshot", tm.Snapshot.Signed.Version,
		"targets", s.numTargets, "expires", s.expires)
	return nil
}

// Target returns what the verified metadata says of path (no hash prefix),
// resolved through the delegations in the specification's pre-order
// depth-first order. Delegated roles are fetched and verified on first use
// (against the delegator on the lookup's path), so Target may block on the
// upstream until ctx is done. Errors wrap ErrNotFound, ErrNoMetadata,
// ErrExpired or ErrRoleUnavailable.
func (m *Mirror) Target(ctx context.Context, path string) (TargetInfo, error) {
	s := m.state.Load()
	if s == nil {
		return TargetInfo{}, fmt.Errorf("tuf: %s: %w", m.cfg.Name, m.noMetadataErr())
	}
	t, err := m.lookup(ctx, s, path)
	if err != nil {
		return TargetInfo{}, fmt.Errorf("tuf: %s: %w", m.cfg.Name, err)
	}
	return t, nil
}

func (m *Mirror) noMetadataErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastErr != nil {
		return fmt.Errorf("%w (last refresh: %v)", ErrNoMetadata, m.lastErr)
	}
	return ErrNoMetadata
}

// Metadata returns a verified metadata file byte for byte, by its file name
// ("root.json", "3.root.json", "timestamp.json", "7.snapshot.json",
// "7.targets.json", "ROLE.json", ...). Root versions are served even when the
// rest has expired (a client needs them to follow a rotation); other files
// are refused with ErrExpired once the state expired. A delegated role not
// yet verified is fetched and verified against a delegator first, so
// Metadata may block on the upstream until ctx is done.
func (m *Mirror) Metadata(ctx context.Context, name string) ([]byte, error) {
	n, err := ParseMetadataName(name)
	if err != nil {
		return nil, fmt.Errorf("tuf: %s: %w: %w", m.cfg.Name, ErrNotFound, err)
	}
	s := m.state.Load()
	if s == nil {
		return nil, fmt.Errorf("tuf: %s: %w", m.cfg.Name, m.noMetadataErr())
	}
	if n.Role != metadata.ROOT && m.clock.Now().After(s.expires) {
		return nil, fmt.Errorf("tuf: %s: %w at %s", m.cfg.Name, ErrExpired, s.expires.UTC().Format(time.RFC3339))
	}
	if data, ok := s.files[n.String()]; ok {
		return data, nil
	}
	if prev := m.prevFiles.Load(); prev != nil && n.Version > 0 {
		if data, ok := (*prev)[n.String()]; ok {
			return data, nil
		}
	}
	if !slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], n.Role) {
		data, err := m.delegatedMetadata(ctx, s, n)
		if err == nil {
			return data, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("tuf: %s: metadata %s: %w", m.cfg.Name, name, err)
		}
	}
	return nil, fmt.Errorf("tuf: %s: metadata %s: %w", m.cfg.Name, name, ErrNotFound)
}

// Targets lists the targets of the top-level targets role and of the
// delegated roles verified so far (delegations are resolved lazily, by
// Target), sorted by path, for status pages and tests; lookups use Target.
func (m *Mirror) Targets() []TargetInfo {
	s := m.state.Load()
	if s == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []TargetInfo
	add := func(role string, md *metadata.Metadata[metadata.TargetsType]) {
		for path, tf := range md.Signed.Targets {
			if !seen[path] {
				seen[path] = true
				out = append(out, targetInfo(path, role, tf))
			}
		}
	}
	add(metadata.TARGETS, s.trusted.Targets[metadata.TARGETS])
	s.roles.mu.Lock()
	for key, md := range s.roles.verified {
		add(lastRole(key), md)
	}
	s.roles.mu.Unlock()
	slices.SortFunc(out, func(a, b TargetInfo) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// OpenTarget starts an upstream GET of t's bytes from offset on (a Range
// request when offset > 0). With consistent snapshots it asks for the
// hash-prefixed name (sha256 first, then the other listed digests on 404).
// The body is paced by UpstreamBytesPerSecond and is NOT verified: stream
// it through a Verifier. The caller closes it.
func (m *Mirror) OpenTarget(ctx context.Context, t TargetInfo, offset int64) (*TargetBody, error) {
	consistent := false
	if s := m.state.Load(); s != nil {
		consistent = s.trusted.Root.Signed.ConsistentSnapshot
	}
	var names []string
	if consistent {
		algs := sortedKeys(t.Hashes)
		slices.SortStableFunc(algs, func(a, b string) int {
			return boolInt(b == "sha256") - boolInt(a == "sha256")
		})
		for _, alg := range algs {
			names = append(names, hashPrefixed(t.Path, t.Hashes[alg]))
		}
	} else {
		names = []string{t.Path}
	}
	var urls []string
	for _, n := range names {
		u, err := url.JoinPath(m.cfg.TargetsURL, strings.Split(n, "/")...)
		if err != nil {
			return nil, fmt.Errorf("tuf: %s: target %s: %w", m.cfg.Name, t.Path, err)
		}
		urls = append(urls, u)
	}
	body, err := m.t.openTarget(ctx, urls, offset, t.Length)
	if err != nil {
		return nil, fmt.Errorf("tuf: %s: open target %s: %w", m.cfg.Name, t.Path, err)
	}
	if m.pace != nil {
		body.ReadCloser = &pacedReader{ctx: ctx, r: body.ReadCloser, p: m.pace}
	}
	return body, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Status is a Mirror's state for status pages.
type Status struct {
	Name             string
	MetadataURL      string
	TargetsURL       string
	Verified         bool // a verified state is in service (maybe expired)
	VerifiedAt       time.Time
	Expires          time.Time
	Expired          bool
	RootVersion      int64
	TimestampVersion int64
	SnapshotVersion  int64
	TargetsVersion   int64
	// Trusted*Version are the newest versions that verified (the rollback
	// floor); they run ahead of the served ones when a refresh failed after
	// its root, timestamp or snapshot verified.
	TrustedRootVersion      int64
	TrustedTimestampVersion int64
	TrustedSnapshotVersion  int64
	Targets                 int // top-level targets
	DelegatedRoles          int // delegated roles verified so far
	LastAttempt             time.Time
	LastError               string
}

// Status returns the mirror's current status.
func (m *Mirror) Status() Status {
	st := Status{Name: m.cfg.Name, MetadataURL: m.cfg.MetadataURL, TargetsURL: m.cfg.TargetsURL}
	m.mu.Lock()
	st.LastAttempt = m.lastAttempt
	if m.lastErr != nil {
		st.LastError = m.lastErr.Error()
	}
	m.mu.Unlock()
	if s := m.state.Load(); s != nil {
		tm := s.trusted
		st.Verified = true
		st.VerifiedAt = s.p.VerifiedAt
		st.Expires = s.expires
		st.Expired = m.clock.Now().After(s.expires)
		st.RootVersion = tm.Root.Signed.Version
		st.TimestampVersion = tm.Timestamp.Signed.Version
		st.SnapshotVersion = tm.Snapshot.Signed.Version
		st.TargetsVersion = tm.Targets[metadata.TARGETS].Signed.Version
		st.Targets = s.numTargets
		names := map[string]bool{}
		s.roles.mu.Lock()
		for key := range s.roles.verified {
			names[lastRole(key)] = true
		}
		s.roles.mu.Unlock()
		st.DelegatedRoles = len(names)
	}
	if a := m.anchor.Load(); a != nil {
		st.TrustedRootVersion = 1
		if r, err := metadata.Root().FromBytes(m.pinned); err == nil {
			st.TrustedRootVersion = r.Signed.Version
		}
		if len(a.Roots) > 0 {
			if r, err := metadata.Root().FromBytes(a.Roots[len(a.Roots)-1]); err == nil {
				st.TrustedRootVersion = r.Signed.Version
			}
		}
		st.TrustedTimestampVersion, st.TrustedSnapshotVersion = a.versions()
	}
	return st
}

// Health returns the mirror's current problems (none when all is well).
func (m *Mirror) Health() []health.Problem {
	m.mu.Lock()
	lastErr, loadErr, lastAttempt := m.lastErr, m.loadErr, m.lastAttempt
	m.mu.Unlock()
	name := m.cfg.Name
	s := m.state.Load()
	var out []health.Problem
	switch {
	case s == nil:
		why := "no refresh has completed yet"
		if lastErr != nil {
			why = "last refresh failed: " + lastErr.Error()
		} else if loadErr != nil {
			why = loadErr.Error()
		}
		out = append(out, health.Problem{Code: "tuf-no-metadata", Severity: health.Error,
			Text: fmt.Sprintf("repository %s: no verified metadata, nothing is served (%s)", name, why)})
	case m.clock.Now().After(s.expires):
		text := fmt.Sprintf("repository %s: verified metadata expired at %s; its targets are not served until a refresh succeeds", name, s.expires.UTC().Format(time.RFC3339))
		if lastErr != nil {
			text += " (last refresh failed: " + lastErr.Error() + ")"
		}
		out = append(out, health.Problem{Code: "tuf-metadata-expired", Severity: health.Error, Text: text})
	case lastErr != nil:
		out = append(out, health.Problem{Code: "tuf-refresh-failed", Severity: health.Warning,
			Text: fmt.Sprintf("repository %s: refresh failed at %s (%v); serving metadata verified at %s, which expires at %s", name,
				lastAttempt.UTC().Format(time.RFC3339), lastErr, s.p.VerifiedAt.UTC().Format(time.RFC3339), s.expires.UTC().Format(time.RFC3339))})
	}
	if s != nil {
		missing := s.missing()
		for _, role := range sortedKeys(missing) {
			out = append(out, health.Problem{Code: "tuf-role-unavailable", Severity: health.Warning,
				Text: fmt.Sprintf("repository %s: delegated role %s did not verify, its targets are not served: %s", name, role, missing[role])})
		}
	}
	return out
}

package tuf

import (
	"bytes"
	"cmp"
	"context"
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

	"github.com/patchgate/patchgate/clock"
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
	// MaxDelegatedRoles bounds the delegated roles walked (default 4096).
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
	roots     atomic.Pointer[[][]byte]          // verified root chain after the pinned root

	mu          sync.Mutex
	lastAttempt time.Time
	lastErr     error
	loadErr     error // the stored state could not be loaded at start
}

const (
	stateFile  = "verified.json"
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
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
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

// load restores the verified state stored by an earlier run. The state is
// re-verified against the pinned root as of the time it was verified;
// expiry is checked against the clock when it is used.
func (m *Mirror) load() {
	empty := [][]byte{}
	m.roots.Store(&empty)
	p, err := readPersisted(filepath.Join(m.cfg.StateDir, stateFile))
	if err == nil && p != nil {
		var tm *trustedmetadata.TrustedMetadata
		tm, *p, err = verifyAll(m.pinned, *p, p.VerifiedAt)
		if err == nil {
			m.setState(newState(m.pinned, *p, tm, 32))
			m.log.Info("loaded verified metadata", "verified_at", p.VerifiedAt, "expires", m.state.Load().expires)
			return
		}
		// Keep what can be kept: the verified root chain.
		if _, roots, cerr := verifyChain(m.pinned, p.Roots, p.VerifiedAt); cerr == nil {
			m.roots.Store(&roots)
		}
	}
	if err != nil {
		m.loadErr = fmt.Errorf("stored metadata: %w", err)
		m.log.Warn("stored metadata not usable", "err", err)
	}
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
	roots := s.p.Roots
	m.roots.Store(&roots)
	tm := s.trusted
	m.met.expiry.Set(float64(s.expires.Unix()))
	m.met.versions.WithLabelValues(metadata.ROOT).Set(float64(tm.Root.Signed.Version))
	m.met.versions.WithLabelValues(metadata.TIMESTAMP).Set(float64(tm.Timestamp.Signed.Version))
	m.met.versions.WithLabelValues(metadata.SNAPSHOT).Set(float64(tm.Snapshot.Signed.Version))
	m.met.versions.WithLabelValues(metadata.TARGETS).Set(float64(tm.Targets[metadata.TARGETS].Signed.Version))
	m.met.targets.Set(float64(s.numTargets))
	m.met.rolesMissing.Set(float64(len(s.missing)))
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
// chain, timestamp, snapshot, targets (go-tuf's updater, a fresh one each
// time) and then every delegated role. The new state replaces the served one
// only once all of it verified, and is persisted atomically; on failure the
// last verified state stays in service.
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
	roots := *m.roots.Load()
	latest := m.pinned
	if len(roots) > 0 {
		latest = roots[len(roots)-1]
	}
	latestRoot, err := metadata.Root().FromBytes(latest)
	if err != nil {
		return err
	}
	dir := filepath.Join(m.cfg.StateDir, clientDir)
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
	if err := up.Refresh(); err != nil {
		return err
	}
	trusted := up.GetTrustedMetadataSet()
	p := persisted{VerifiedAt: now, Roots: slices.Clone(roots), Missing: map[string]string{}}
	for v := latestRoot.Signed.Version + 1; v <= trusted.Root.Signed.Version; v++ {
		raw, ok := f.roots[v]
		if !ok {
			return fmt.Errorf("root version %d verified but not recorded", v)
		}
		p.Roots = append(p.Roots, raw)
	}
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		data, err := os.ReadFile(filepath.Join(dir, role+".json"))
		if err != nil {
			return err
		}
		switch role {
		case metadata.TIMESTAMP:
			p.Timestamp = data
		case metadata.SNAPSHOT:
			p.Snapshot = data
		default:
			p.Roles = []persistedRole{{Name: metadata.TARGETS, Parent: metadata.ROOT, Data: data}}
		}
	}
	// Verify everything again in our own trusted set, from the pinned root:
	// what we persist and serve is exactly what verified here.
	tm, p, err := verifyAll(m.pinned, p, now)
	if err != nil {
		return fmt.Errorf("re-verify: %w", err)
	}
	if err := m.walkDelegations(ctx, f, tm, &p); err != nil {
		return err
	}
	if len(p.Missing) == 0 {
		p.Missing = nil
	}
	s := newState(m.pinned, p, tm, 32)
	old := m.state.Load()
	// Nothing new upstream (same timestamp, same root chain): the stored state is
	// still this one, verified at an earlier time; skip rewriting it.
	unchanged := old != nil && bytes.Equal(old.p.Timestamp, p.Timestamp) && len(old.p.Roots) == len(p.Roots) &&
		len(old.p.Roles) == len(p.Roles) && len(old.p.Missing) == len(p.Missing)
	if !unchanged {
		if err := writePersisted(filepath.Join(m.cfg.StateDir, stateFile), p); err != nil {
			return fmt.Errorf("persist: %w", err)
		}
	}
	m.setState(s)
	if old == nil || !bytes.Equal(old.p.Timestamp, s.p.Timestamp) {
		m.log.Info("metadata refreshed", "timestamp", tm.Timestamp.Signed.Version, "snapshot", tm.Snapshot.Signed.Version,
			"targets", s.numTargets, "expires", s.expires)
	}
	for role, why := range s.missing {
		m.log.Warn("delegated role unavailable", "role", role, "err", why)
	}
	return nil
}

// walkDelegations loads every delegated role reachable from targets,
// breadth first, reusing the bytes of the served state when the snapshot
// lists the same version. A role that fails verification is recorded in
// p.Missing (its targets cannot be served); a transport failure fails the
// refresh.
func (m *Mirror) walkDelegations(ctx context.Context, f *refreshFetcher, tm *trustedmetadata.TrustedMetadata, p *persisted) error {
	prev := map[string][]byte{}
	if s := m.state.Load(); s != nil {
		for _, r := range s.p.Roles {
			prev[r.Name] = r.Data
		}
	}
	consistent := tm.Root.Signed.ConsistentSnapshot
	visited := map[string]bool{metadata.TARGETS: true}
	queue := []string{metadata.TARGETS}
	loaded := 0
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		d := tm.Targets[parent].Signed.Delegations
		if d == nil {
			continue
		}
		var names []string
		switch {
		case d.Roles != nil:
			for _, r := range d.Roles {
				names = append(names, r.Name)
			}
		case d.SuccinctRoles != nil:
			if _, n := d.SuccinctRoles.GetSuffixLen(); n > m.cfg.MaxDelegatedRoles {
				p.Missing[d.SuccinctRoles.NamePrefix+"-*"] = fmt.Sprintf("%d hash bins, over the limit of %d delegated roles", n, m.cfg.MaxDelegatedRoles)
				continue
			}
			names = d.SuccinctRoles.GetRoles()
		}
		for _, name := range names {
			if visited[name] {
				continue
			}
			visited[name] = true
			if loaded >= m.cfg.MaxDelegatedRoles {
				p.Missing[name] = fmt.Sprintf("over the limit of %d delegated roles", m.cfg.MaxDelegatedRoles)
				continue
			}
			meta, ok := tm.Snapshot.Signed.Meta[name+".json"]
			if !ok {
				p.Missing[name] = "not listed in snapshot"
				continue
			}
			var err error
			data, ok := prev[name]
			if ok {
				if _, err = tm.UpdateDelegatedTargets(data, name, parent); err != nil {
					ok = false
				}
			}
			if !ok {
				data, err = m.downloadRole(ctx, f, name, meta, consistent)
				if err != nil {
					return fmt.Errorf("role %s: %w", name, err)
				}
				_, err = tm.UpdateDelegatedTargets(data, name, parent)
			}
			if err != nil {
				p.Missing[name] = err.Error()
				continue
			}
			loaded++
			p.Roles = append(p.Roles, persistedRole{Name: name, Parent: parent, Data: data})
			queue = append(queue, name)
		}
	}
	return nil
}

func (m *Mirror) downloadRole(ctx context.Context, f *refreshFetcher, name string, meta *metadata.MetaFiles, consistent bool) ([]byte, error) {
	file := url.PathEscape(name) + ".json"
	if consistent {
		file = versionString(meta.Version) + "." + file
	}
	u, err := url.JoinPath(m.cfg.MetadataURL, file)
	if err != nil {
		return nil, err
	}
	length := meta.Length
	if length == 0 {
		length = maxTargets
	}
	return f.t.getBytes(ctx, u, length)
}

// Target returns what the verified metadata says of path (no hash prefix).
// Errors wrap ErrNotFound, ErrNoMetadata, ErrExpired or ErrRoleUnavailable.
func (m *Mirror) Target(path string) (TargetInfo, error) {
	s := m.state.Load()
	if s == nil {
		return TargetInfo{}, fmt.Errorf("tuf: %s: %w", m.cfg.Name, m.noMetadataErr())
	}
	t, err := s.lookup(path, m.clock.Now())
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
// are refused with ErrExpired once the state expired.
func (m *Mirror) Metadata(name string) ([]byte, error) {
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
	return nil, fmt.Errorf("tuf: %s: metadata %s: %w", m.cfg.Name, name, ErrNotFound)
}

// Targets lists every target of the verified metadata, sorted by path (for
// status pages and tests; lookups use Target).
func (m *Mirror) Targets() []TargetInfo {
	s := m.state.Load()
	if s == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []TargetInfo
	for _, r := range s.p.Roles {
		for path, tf := range s.trusted.Targets[r.Name].Signed.Targets {
			if !seen[path] {
				seen[path] = true
				out = append(out, targetInfo(path, r.Name, tf))
			}
		}
	}
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
	Targets          int
	DelegatedRoles   int
	LastAttempt      time.Time
	LastError        string
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
		st.DelegatedRoles = len(s.p.Roles) - 1
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
		for _, role := range sortedKeys(s.missing) {
			out = append(out, health.Problem{Code: "tuf-role-unavailable", Severity: health.Warning,
				Text: fmt.Sprintf("repository %s: delegated role %s did not verify, its targets are not served: %s", name, role, s.missing[role])})
		}
	}
	return out
}

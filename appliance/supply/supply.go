package supply

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/periodic"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options are what a Service needs besides its sources.
type Options struct {
	// Dir holds the staged candidates (Dir/objects/SHA256) and partial downloads
	// (Dir/partial); the wiring passes STATE/supply.
	Dir string
	// ConfigDir is where relative key_file paths are found.
	ConfigDir string
	Clock     clock.Clock
	Logger    *slog.Logger
	// Registerer takes the metrics (nil: a private registry).
	Registerer prometheus.Registerer
	// Client fetches from vendors (nil: bounded dial, TLS and header timeouts).
	Client *http.Client
	// Pace, if set, paces every download body (the upstream bandwidth cap).
	Pace func(ctx context.Context, r io.Reader) io.Reader
	// UserAgent is sent with every request.
	UserAgent string
	// Events, if set, is told of every rejection and every new candidate.
	Events Events
	// Location is the zone download windows are read in (nil: the appliance's local
	// zone); the wiring passes the bandwidth schedule's.
	Location *time.Location
}

// Events receives what checks find; the wiring records it in the audit trail.
type Events interface {
	// Rejected is a check that refused what the source offered (or could not reach it).
	Rejected(ctx context.Context, r Rejected) error
	// Staged is a new verified candidate.
	Staged(ctx context.Context, c Candidate) error
}

// Rejected is a failed check: the source, what was being fetched and why.
type Rejected struct {
	Source, Kind, URL string
	Reason            string // see the reasons in the package README
	Error             string
}

// Candidate is a verified file a source offered, with its provenance. Its bytes are
// at Service.Path(SHA256).
type Candidate struct {
	ID           int64     `json:"id"`
	Source       string    `json:"source"`
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	Version      string    `json:"version,omitempty"`
	URL          string    `json:"url"`
	Verification string    `json:"verification"`
	FetchedAt    time.Time `json:"fetched_at"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
	SHA512       string    `json:"sha512"`
}

// Status is a source's state for the API and the status page.
type Status struct {
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	URL         string     `json:"url,omitempty"`
	Interval    string     `json:"interval"`
	Result      string     `json:"result"` // never, ok, rejected, deferred (the download window closed)
	Reason      string     `json:"reason,omitempty"`
	Error       string     `json:"error,omitempty"`
	LastCheck   *time.Time `json:"last_check,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	NextCheck   *time.Time `json:"next_check,omitempty"`
	Window      string     `json:"download_window,omitempty"` // "22:00-06:00 mon,tue" or ""
	Checks      int        `json:"checks"`
	NewLast     int        `json:"new_last_check"` // candidates the last check staged
	Candidates  int        `json:"candidates"`
}

// ErrUnknownSource is returned for a source name not configured.
var ErrUnknownSource = errors.New("supply: no such source")

// Service checks every configured source on its interval, verifies each download by
// the vendor's own means, and stages the verified files as candidates. It is safe for
// concurrent use; Run's goroutines end with its context.
type Service struct {
	db      *store.DB
	opts    Options
	log     *slog.Logger
	met     *metrics
	fetch   *fetcher
	sources []*source
}

// source is one configured source with its pinned keys and state.
type source struct {
	cfg     Source
	keys    *Keyring
	window  *schedule    // nil: always open
	checkMu sync.Mutex   // one check at a time
	trigger periodic.Ask // a check asked for now
	mu      sync.Mutex
	st      Status
}

// Migrate applies the supply component's migrations (its tables) to db.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateFS(ctx, "supply", migrationFS, "migrations")
}

// Open applies the supply migrations to db, reads the sources' pinned keys and
// prepares the staging directory.
func Open(ctx context.Context, db *store.DB, sec Section, opts Options) (*Service, error) {
	defaults.Fill(&opts.Clock, &opts.Logger, &opts.Registerer)
	if opts.Client == nil {
		opts.Client = newHTTPClient()
	}
	if opts.Dir == "" {
		return nil, errors.New("supply: open: no directory for staged candidates")
	}
	if err := Migrate(ctx, db); err != nil {
		return nil, err
	}
	for _, d := range []string{"objects", "partial"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("supply: open: %w", err)
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("supply: metrics: %w", err)
	}
	s := &Service{db: db, opts: opts, log: opts.Logger, met: m,
		fetch: &fetcher{client: opts.Client, pace: opts.Pace, userAgent: opts.UserAgent}}
	for _, c := range sec {
		c = c.withDefaults()
		src := &source{cfg: c, trigger: periodic.NewAsk(), window: newSchedule(c.DownloadWindow, opts.Location),
			st: Status{Name: c.Name, Kind: c.Kind, URL: c.URL + c.ChecksumsURL + c.Dir, Interval: c.Interval.D().String(), Result: "never",
				Window: c.DownloadWindow.String()}}
		if src.keys, err = LoadKeyring(c.Key, c.KeyFile, opts.ConfigDir); err != nil {
			return nil, fmt.Errorf("supply: source %s: %w", c.Name, err)
		}
		n, err := s.count(ctx, c.Name)
		if err != nil {
			return nil, err
		}
		src.st.Candidates = n
		s.sources = append(s.sources, src)
	}
	return s, nil
}

// Name is the service's name on the status page.
func (s *Service) Name() string { return "supply" }

// Ready is true: a source that cannot be reached is a health problem, not unreadiness.
func (s *Service) Ready() bool { return true }

// Health names each source whose last check failed.
func (s *Service) Health() []health.Problem {
	return health.List(s.sources, func(src *source) (health.Problem, bool) {
		st := src.status()
		if st.Result != "rejected" {
			return health.Problem{}, false
		}
		p := health.Problem{Code: "supply-source-rejected", Severity: health.Error,
			Text: fmt.Sprintf("source %s: %s (previous candidates kept)", st.Name, st.Error)}
		switch st.Reason {
		case reasonNetwork, reasonStatus, reasonDeadline, reasonHTML, reasonTooLarge, reasonLocal:
			p.Code, p.Severity = "supply-source-unavailable", health.Warning
		}
		return p, true
	})
}

// Run checks every source now and then every interval (each within its download
// window, if it has one), or at once when CheckSoon asks, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, src := range s.sources {
		wg.Go(func() { s.loop(ctx, src) })
	}
	wg.Wait()
	return nil
}

// loop runs src's checks: scheduled ones when they are due and the window is open,
// asked-for ones at once (the scheduled check then stays due when it was).
func (s *Service) loop(ctx context.Context, src *source) {
	l := periodic.Loop{Clock: s.opts.Clock, Every: src.cfg.Interval.D(), Ask: src.trigger, KeepDue: true,
		Due: func(due time.Time) {
			src.mu.Lock()
			src.st.NextCheck = &due // the status keeps its own copy
			src.mu.Unlock()
		}}
	if src.window != nil {
		l.Window = src.window
	}
	l.Run(ctx, func(ctx context.Context, manual bool) { s.check(ctx, src, manual) })
}

// CheckSoon asks Run to check the named source at once (it returns before the check).
func (s *Service) CheckSoon(name string) (Status, error) {
	src := s.source(name)
	if src == nil {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownSource, name)
	}
	src.trigger.Soon()
	return src.status(), nil
}

// Check checks the named source now and returns its status afterwards.
func (s *Service) Check(ctx context.Context, name string) (Status, error) {
	src := s.source(name)
	if src == nil {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownSource, name)
	}
	s.check(ctx, src, true)
	return src.status(), nil
}

// Sources returns every source's status, in config order.
func (s *Service) Sources() []Status {
	out := make([]Status, len(s.sources))
	for i, src := range s.sources {
		out[i] = src.status()
	}
	return out
}

func (s *Service) source(name string) *source {
	for _, src := range s.sources {
		if src.cfg.Name == name {
			return src
		}
	}
	return nil
}

func (src *source) status() Status {
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.st
}

// check runs one check of src, bounded by its timeout and, unless manual (asked for
// now), by the closing of its download window; it records the outcome.
func (s *Service) check(ctx context.Context, src *source, manual bool) {
	src.checkMu.Lock()
	defer src.checkMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	c := src.cfg
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-cctx.Done():
		case <-s.opts.Clock.After(c.Timeout.D()):
			cancel(reject(reasonDeadline, "check did not finish within %s", c.Timeout.D()))
		}
	}()
	if end := src.window.closes(s.opts.Clock.Now()); !manual && !end.IsZero() {
		go func() {
			select {
			case <-cctx.Done():
			case <-s.opts.Clock.After(end.Sub(s.opts.Clock.Now())):
				cancel(reject(reasonWindow, "the download window %s closed; the download resumes in the next one", c.DownloadWindow))
			}
		}()
	}
	run := &checkRun{s: s, src: src, ctx: cctx, now: s.opts.Clock.Now()}
	err := run.do()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return // the appliance is stopping: not the source's fault
	}
	now := s.opts.Clock.Now()
	n, cerr := s.count(ctx, c.Name)
	src.mu.Lock()
	src.st.Checks++
	src.st.LastCheck = &now
	src.st.NewLast = run.staged
	if cerr == nil {
		src.st.Candidates = n
	}
	switch {
	case err == nil:
		src.st.Result, src.st.Reason, src.st.Error = "ok", "", ""
		src.st.LastSuccess = &now
	case reasonOf(err) == reasonWindow:
		src.st.Result, src.st.Reason, src.st.Error = "deferred", reasonWindow, err.Error()
	default:
		src.st.Result, src.st.Reason, src.st.Error = "rejected", reasonOf(err), err.Error()
	}
	src.mu.Unlock()
	if err == nil {
		s.met.checks.WithLabelValues(c.Name, "ok").Inc()
		s.met.lastSuccess.WithLabelValues(c.Name).Set(float64(now.Unix()))
		return
	}
	if reasonOf(err) == reasonWindow { // not the source's fault: nothing to audit
		s.met.checks.WithLabelValues(c.Name, "deferred").Inc()
		s.log.Info("source check stopped at the end of its download window", "source", c.Name)
		return
	}
	s.met.checks.WithLabelValues(c.Name, "rejected").Inc()
	s.met.rejections.WithLabelValues(c.Name, reasonOf(err)).Inc()
	s.log.Warn("source check refused", "source", c.Name, "reason", reasonOf(err), "err", err)
	if s.opts.Events != nil {
		r := Rejected{Source: c.Name, Kind: c.Kind, URL: run.url, Reason: reasonOf(err), Error: err.Error()}
		if err := s.opts.Events.Rejected(context.WithoutCancel(ctx), r); err != nil {
			s.log.Error("supply: a rejection could not be recorded", "source", c.Name, "err", err)
		}
	}
}

// Instructions are the install instructions configured for source name (its install
// key); false when it has none.
func (s *Service) Instructions(name string) (agentapi.Instructions, bool) {
	src := s.source(name)
	if src == nil || len(src.cfg.Install) == 0 {
		return agentapi.Instructions{}, false
	}
	return agentapi.Instructions{Install: maps.Clone(src.cfg.Install)}, true
}

// partPath is where a download of url for source is kept until verified.
func (s *Service) partPath(source, url string) string {
	h := sha256.Sum256([]byte(source + "\x00" + url))
	return filepath.Join(s.opts.Dir, "partial", hex.EncodeToString(h[:16])+".part")
}

// Path is where the staged bytes of the candidate with this sha256 are.
func (s *Service) Path(sha256 string) string { return filepath.Join(s.opts.Dir, "objects", sha256) }

// has reports whether source already has a candidate name with this sha256.
func (s *Service) has(ctx context.Context, source, name, sha string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM supply_candidates WHERE source = ? AND name = ? AND sha256 = ?`, source, name, sha).Scan(&n)
	if err != nil {
		return false, reject(reasonLocal, "supply: candidates: %v", err)
	}
	return n > 0, nil
}

func (s *Service) count(ctx context.Context, source string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM supply_candidates WHERE source = ?`, source).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("supply: candidates: %w", err)
	}
	return n, nil
}

// Candidates lists the candidates, newest first; source "" lists every source's.
func (s *Service) Candidates(ctx context.Context, source string) ([]Candidate, error) {
	return s.queryCandidates(ctx, `WHERE ? = '' OR source = ? ORDER BY id DESC`, source, source)
}

// ErrUnknownCandidate is returned for a candidate id that names none.
var ErrUnknownCandidate = errors.New("supply: no such candidate")

// Candidate returns the candidate id (ErrUnknownCandidate if there is none).
func (s *Service) Candidate(ctx context.Context, id int64) (Candidate, error) {
	cs, err := s.queryCandidates(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Candidate{}, err
	}
	if len(cs) == 0 {
		return Candidate{}, fmt.Errorf("%w: %d", ErrUnknownCandidate, id)
	}
	return cs[0], nil
}

func (s *Service) queryCandidates(ctx context.Context, where string, args ...any) ([]Candidate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, source, kind, name, version, url, verification, fetched_at, size, sha256, sha512
		FROM supply_candidates `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("supply: candidates: %w", err)
	}
	defer rows.Close()
	out := []Candidate{}
	for rows.Next() {
		var c Candidate
		var at string
		if err := rows.Scan(&c.ID, &c.Source, &c.Kind, &c.Name, &c.Version, &c.URL, &c.Verification, &at, &c.Size, &c.SHA256, &c.SHA512); err != nil {
			return nil, fmt.Errorf("supply: candidates: %w", err)
		}
		c.FetchedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("supply: candidates: %w", err)
	}
	return out, nil
}

// insert records a staged candidate; false if it was already there.
func (s *Service) insert(ctx context.Context, c Candidate) (int64, bool, error) {
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO supply_candidates
			(source, kind, name, version, url, verification, fetched_at, size, sha256, sha512)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Source, c.Kind, c.Name, c.Version, c.URL, c.Verification, c.FetchedAt.UTC().Format(time.RFC3339Nano), c.Size, c.SHA256, c.SHA512)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return 0, false, reject(reasonLocal, "supply: record candidate %s: %v", c.Name, err)
	}
	return id, id != 0, nil
}

package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
)

// Config is the service's configuration (Section.Config builds it).
type Config struct {
	Interval   time.Duration // 0: no scheduled backup
	Keep       int
	Recipients []age.Recipient
	Targets    []Target
}

// Options are what the service needs besides its config.
type Options struct {
	Sources Sources
	// StatusDir keeps last.json (the last backup) and drill.json (the last drill);
	// usually STATE/backup. Sources.WorkDir defaults to StatusDir/tmp.
	StatusDir string
	Version   string
	Clock     clock.Clock
	Logger    *slog.Logger
	// Registerer takes the metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Pinned lists the cache's pinned targets for the manifest; nil: none known.
	Pinned func() []Pin
	// Events, when set, hears of every backup made or failed (the audit trail).
	Events func(ctx context.Context, r Result)
}

// Result is the outcome of one backup.
type Result struct {
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Scheduled bool      `json:"scheduled"`
	OK        bool      `json:"ok"`
	Archive   string    `json:"archive,omitempty"`
	Size      int64     `json:"size,omitempty"`
	Files     int       `json:"files,omitempty"`
	Targets   []string  `json:"targets,omitempty"` // targets written
	Error     string    `json:"error,omitempty"`
}

// DrillResult is the outcome of one restore drill (patchgate backup drill).
type DrillResult struct {
	Time         time.Time `json:"time"`
	Archive      string    `json:"archive"`
	OK           bool      `json:"ok"`
	Tables       int       `json:"tables"`
	Rows         int       `json:"rows"`
	AuditRecords uint64    `json:"audit_records"`
	Error        string    `json:"error,omitempty"`
}

// Status is the backup panel's data.
type Status struct {
	Enabled     bool          `json:"enabled"`
	Interval    time.Duration `json:"interval"`
	Targets     []string      `json:"targets"`
	Recipients  int           `json:"recipients"`
	Last        *Result       `json:"last,omitempty"`
	LastSuccess time.Time     `json:"last_success,omitzero"`
	NextDue     time.Time     `json:"next_due,omitzero"`
	Drill       *DrillResult  `json:"drill,omitempty"`
}

// persisted is last.json.
type persisted struct {
	Last        *Result   `json:"last,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Service makes backups on demand (Backup) and on a schedule (Run). It is safe for
// concurrent use; one backup runs at a time.
type Service struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	met     *metrics
	started time.Time

	run sync.Mutex // one backup at a time
	mu  sync.Mutex
	st  persisted
}

// New builds the service and reads the last result from StatusDir.
func New(cfg Config, opts Options) (*Service, error) {
	defaults.Fill(&opts.Clock, &opts.Logger, &opts.Registerer)
	if opts.Sources.WorkDir == "" {
		opts.Sources.WorkDir = filepath.Join(opts.StatusDir, "tmp")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("backup: metrics: %w", err)
	}
	s := &Service{cfg: cfg, opts: opts, log: opts.Logger, met: m, started: opts.Clock.Now()}
	if b, err := os.ReadFile(filepath.Join(opts.StatusDir, "last.json")); err == nil {
		if err := json.Unmarshal(b, &s.st); err != nil {
			s.log.Warn("backup: last.json unreadable; starting afresh", "err", err)
			s.st = persisted{}
		}
	}
	if !s.st.LastSuccess.IsZero() {
		m.lastSuccess.Set(float64(s.st.LastSuccess.Unix()))
	}
	return s, nil
}

// Name implements the appliance's Service.
func (s *Service) Name() string { return "backup" }

// Ready is true from the start: a missing backup is a health problem.
func (s *Service) Ready() bool { return true }

// Run makes a backup every Interval (none when it is 0) until ctx is done. The first
// is due one Interval after the last success (now, if none).
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		<-ctx.Done()
		return nil
	}
	for {
		wait := max(s.nextDue().Sub(s.opts.Clock.Now()), 0)
		select {
		case <-ctx.Done():
			return nil
		case <-s.opts.Clock.After(wait):
		}
		r, err := s.backup(ctx, true)
		if err != nil && ctx.Err() == nil {
			s.log.Error("backup: scheduled backup failed", "err", err)
		} else if err == nil {
			s.log.Info("backup: made", "archive", r.Archive, "size", r.Size, "targets", r.Targets)
		}
		if !r.OK { // retry after a failure no sooner than a tenth of the interval
			select {
			case <-ctx.Done():
				return nil
			case <-s.opts.Clock.After(s.cfg.Interval / 10):
			}
		}
	}
}

func (s *Service) nextDue() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.LastSuccess.IsZero() {
		return time.Time{}
	}
	return s.st.LastSuccess.Add(s.cfg.Interval)
}

// Backup makes one backup now (patchgate backup, and the schedule): archive to a
// temporary file, then to every target, then prunes each to Keep.
func (s *Service) Backup(ctx context.Context) (Result, error) { return s.backup(ctx, false) }

func (s *Service) backup(ctx context.Context, scheduled bool) (Result, error) {
	s.run.Lock()
	defer s.run.Unlock()
	now := s.opts.Clock.Now()
	r := Result{Started: now.UTC(), Scheduled: scheduled, Archive: archivePrefix + now.UTC().Format(nameTime) + archiveSuffix}
	err := s.make(ctx, &r)
	r.Finished = s.opts.Clock.Now().UTC()
	r.OK = err == nil
	if err != nil {
		r.Error = err.Error()
		s.met.failures.Inc()
	} else {
		s.met.lastSuccess.Set(float64(r.Finished.Unix()))
		s.met.size.Set(float64(r.Size))
	}
	s.met.duration.Observe(r.Finished.Sub(r.Started).Seconds())
	if s.opts.Events != nil { // before the status shows it, so whoever sees it finds the record
		s.opts.Events(ctx, r)
	}
	s.mu.Lock()
	s.st.Last = &r
	if r.OK {
		s.st.LastSuccess = r.Finished
	}
	b, _ := json.MarshalIndent(s.st, "", "  ")
	s.mu.Unlock()
	if werr := writeStatus(s.opts.StatusDir, "last.json", b); werr != nil {
		s.log.Error("backup: status not saved", "err", werr)
	}
	return r, err
}

func (s *Service) make(ctx context.Context, r *Result) error {
	if len(s.cfg.Targets) == 0 || len(s.cfg.Recipients) == 0 {
		return errorf("not configured: set backup.recipients and backup.local.dir or backup.s3")
	}
	src := s.opts.Sources
	if err := os.MkdirAll(src.WorkDir, 0o700); err != nil {
		return errorf("%w", err)
	}
	f, err := os.CreateTemp(src.WorkDir, "archive-*")
	if err != nil {
		return errorf("%w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var pins []Pin
	if s.opts.Pinned != nil {
		pins = s.opts.Pinned()
	}
	m, err := Write(ctx, f, src, Meta{Version: s.opts.Version, Now: r.Started, Pinned: pins}, s.cfg.Recipients)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return errorf("%w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return errorf("%w", err)
	}
	r.Size, r.Files = st.Size(), len(m.Files)
	var errs []error
	for _, t := range s.cfg.Targets {
		if err := t.Put(ctx, r.Archive, f, r.Size); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Name(), err))
			continue
		}
		r.Targets = append(r.Targets, t.Name())
		if err := t.Prune(ctx, s.cfg.Keep); err != nil {
			s.log.Warn("backup: old archives not pruned", "target", t.Name(), "err", err)
		}
	}
	if len(errs) > 0 {
		return errorf("store archive: %w", errors.Join(errs...))
	}
	return nil
}

func writeStatus(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name), b, 0o640)
}

// Status is the panel's data: the last backup, the last success, when the next is due
// and the last drill (StatusDir/drill.json).
func (s *Service) Status() Status {
	s.mu.Lock()
	st := Status{Enabled: len(s.cfg.Targets) > 0 && len(s.cfg.Recipients) > 0, Interval: s.cfg.Interval,
		Recipients: len(s.cfg.Recipients), Last: s.st.Last, LastSuccess: s.st.LastSuccess}
	s.mu.Unlock()
	for _, t := range s.cfg.Targets {
		st.Targets = append(st.Targets, t.Name())
	}
	if s.cfg.Interval > 0 {
		st.NextDue = s.nextDue()
		if st.NextDue.IsZero() {
			st.NextDue = s.started
		}
	}
	st.Drill, _ = ReadDrill(s.opts.StatusDir)
	return st
}

// Health reports a failed last scheduled backup, and no success within two intervals
// (of the last success, or of the start).
func (s *Service) Health() []health.Problem {
	if s.cfg.Interval <= 0 {
		return nil
	}
	s.mu.Lock()
	last, ok := s.st.Last, s.st.LastSuccess
	s.mu.Unlock()
	var ps []health.Problem
	since := ok
	if since.IsZero() {
		since = s.started
	}
	if now := s.opts.Clock.Now(); now.Sub(since) > 2*s.cfg.Interval {
		what := "no backup has succeeded since " + since.UTC().Format(time.RFC3339)
		ps = append(ps, health.Problem{Code: "backup-missing", Severity: health.Error,
			Text: what + ", more than two intervals (" + (2 * s.cfg.Interval).String() + ")"})
	}
	if last != nil && last.Scheduled && !last.OK {
		ps = append(ps, health.Problem{Code: "backup-failed", Severity: health.Warning,
			Text: "the last scheduled backup failed: " + last.Error})
	}
	return ps
}

// ReadDrill reads the last drill's result from dir (nil, nil when there is none).
func ReadDrill(dir string) (*DrillResult, error) {
	b, err := os.ReadFile(filepath.Join(dir, "drill.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d DrillResult
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("backup: %s: %w", filepath.Join(dir, "drill.json"), err)
	}
	return &d, nil
}

// SaveDrill records a drill's result in dir for the status page.
func SaveDrill(dir string, d DrillResult) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return writeStatus(dir, "drill.json", b)
}

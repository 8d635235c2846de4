package selfupdate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/tuf"
)

// Config is the daemon side's configuration (config section selfupdate).
type Config struct {
	Repo         string        // TUF repository publishing appliance versions; "" turns checks off
	Prefix       string        // their target directory ("appliance/")
	Interval     time.Duration // between checks of the verified targets
	StageTimeout time.Duration // bound on staging one version's files (default 2h)
	ESP          string        // where the boot entries are (/efi)
	Dir          string        // the request directory (STATE/selfupdate)
	Running      string        // the running version
}

// Targets lists verified targets: the repository's *tuf.Mirror.
type Targets interface {
	Targets() []tuf.TargetInfo
}

// Stager keeps verified files in the cache: *cache.Cache.
type Stager interface {
	Prefetch(ctx context.Context, repo string, paths []string) error
	Pin(repo, path string)
	Unpin(repo, path string)
}

// Events receives what belongs in the audit trail. Requested is called before a request
// is written and refuses it when it fails.
type Events interface {
	Requested(ctx context.Context, r Request) error
	Finished(ctx context.Context, r Result) error
}

// Options are a Service's collaborators. Targets and Stager may be nil when Config.Repo
// is empty.
type Options struct {
	Targets    Targets
	Stager     Stager
	Events     Events // nil: nothing recorded
	Clock      clock.Clock
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// ErrRefused is wrapped by the errors of Install and Rollback that refuse a request as
// asked (nothing staged, a request already waiting, nothing to roll back to).
var ErrRefused = errors.New("refused")

// resultPoll is how often the request directory is looked at for the installer's
// result.
const resultPoll = 10 * time.Second

// Service is the daemon side of self-update. It is always ready: an unreachable update
// repository must never hold up the READY=1 that blesses a freshly booted version.
type Service struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	met  *metrics

	reqMu sync.Mutex // one request written at a time

	mu         sync.Mutex
	checked    time.Time
	published  []string // problems with published versions
	available  *Version
	staged     *Version
	stageErr   error
	collectErr error
	last       *Result // the installer's latest result, once recorded
}

// New returns the Service for cfg and makes its request directory.
func New(cfg Config, opts Options) (*Service, error) {
	if opts.Clock == nil || opts.Log == nil || opts.Registerer == nil {
		return nil, errors.New("selfupdate: new: clock, log and registerer are required")
	}
	if cfg.Repo != "" && (opts.Targets == nil || opts.Stager == nil) {
		return nil, fmt.Errorf("selfupdate: new: repository %s has no mirror or cache", cfg.Repo)
	}
	cfg.Interval = cmp.Or(cfg.Interval, time.Hour)
	cfg.StageTimeout = cmp.Or(cfg.StageTimeout, 2*time.Hour)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("selfupdate: new: %w", err)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("selfupdate: new: %w", err)
	}
	s := &Service{cfg: cfg, opts: opts, log: opts.Log, met: met}
	// The result recorded before a restart (an install's reboot); a new one is picked up
	// by Run.
	if data, err := readFile(filepath.Join(cfg.Dir, SeenFile)); err == nil {
		if r, err := ParseResult(data); err == nil {
			s.last = &r
		}
	}
	return s, nil
}

// Name implements the appliance's Service.
func (s *Service) Name() string { return "selfupdate" }

// Ready is always true (see Service).
func (s *Service) Ready() bool { return true }

// Health reports failed staging and installs, and published versions that do not add
// up. It reads no file: systemd's status line asks for it ten times a second.
func (s *Service) Health() []health.Problem {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []health.Problem
	if s.stageErr != nil {
		ps = append(ps, health.Problem{Code: "selfupdate-stage", Severity: health.Warning, Text: s.stageErr.Error()})
	}
	if s.collectErr != nil {
		ps = append(ps, health.Problem{Code: "selfupdate-result", Severity: health.Warning, Text: s.collectErr.Error()})
	}
	for _, p := range s.published {
		ps = append(ps, health.Problem{Code: "selfupdate-published", Severity: health.Info, Text: "ignored: " + p})
	}
	if r := s.last; r != nil && !r.OK {
		ps = append(ps, health.Problem{Code: "selfupdate-failed", Severity: health.Warning,
			Text: fmt.Sprintf("the %s of %s requested by %s failed: %s", r.Action, cmp.Or(r.Version, "the previous version"), r.RequestedBy, r.Error)})
	}
	return ps
}

// Run checks for newer versions every Interval and collects the installer's results,
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	tick := s.opts.Clock.NewTicker(resultPoll)
	defer tick.Stop()
	var next time.Time
	for {
		s.collect(ctx)
		if now := s.opts.Clock.Now(); !now.Before(next) && s.check(ctx) {
			next = now.Add(s.cfg.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		}
	}
}

// check looks through the verified targets for the newest version above the running one
// and stages its files in the cache, pinned so that eviction leaves them alone. It
// returns false while the repository has no verified metadata yet (just after the
// appliance started), so that Run looks again at its next tick.
func (s *Service) check(ctx context.Context) bool {
	if s.cfg.Repo == "" {
		return true
	}
	targets := s.opts.Targets.Targets()
	if len(targets) == 0 {
		return false
	}
	best, problems := s.newest(targets)
	s.mu.Lock()
	s.checked, s.published, s.available = s.opts.Clock.Now(), problems, best
	staged := s.staged
	if best == nil && staged != nil { // withdrawn, or running now
		s.staged = nil
	}
	s.mu.Unlock()
	s.met.available.Set(boolFloat(best != nil))
	if best == nil && staged != nil {
		s.unpin(staged)
		s.met.staged.Set(0)
	}
	if best == nil || staged != nil && staged.Version == best.Version {
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StageTimeout)
	defer cancel()
	if err := s.opts.Stager.Prefetch(sctx, s.cfg.Repo, best.Paths); err != nil {
		err = fmt.Errorf("selfupdate: stage %s: %w", best.Version, err)
		s.log.Warn("appliance version not staged", "version", best.Version, "err", err)
		s.mu.Lock()
		s.stageErr = err
		s.mu.Unlock()
		return true
	}
	for _, p := range best.Paths {
		s.opts.Stager.Pin(s.cfg.Repo, p)
	}
	if staged != nil {
		s.unpin(staged)
	}
	s.mu.Lock()
	s.staged, s.stageErr = best, nil
	s.mu.Unlock()
	s.met.staged.Set(1)
	s.log.Info("appliance version staged", "version", best.Version, "bytes", best.Bytes)
	return true
}

func (s *Service) unpin(v *Version) {
	for _, p := range v.Paths {
		s.opts.Stager.Unpin(s.cfg.Repo, p)
	}
}

// newest returns the newest valid published version above the running one (nil if
// none) and what is wrong with the published versions that are not valid.
func (s *Service) newest(targets []tuf.TargetInfo) (*Version, []string) {
	byPath := map[string]tuf.TargetInfo{}
	var manifests []string
	for _, t := range targets {
		name, ok := strings.CutPrefix(t.Path, s.cfg.Prefix)
		if !ok {
			continue
		}
		byPath[t.Path] = t
		if strings.HasPrefix(name, "patchgate-") && strings.HasSuffix(name, ".update.json") && !strings.Contains(name, "/") {
			manifests = append(manifests, t.Path)
		}
	}
	lookup := func(p string) (tuf.TargetInfo, error) {
		if t, ok := byPath[p]; ok {
			return t, nil
		}
		return tuf.TargetInfo{}, fmt.Errorf("target %s: %w", p, errNotListed)
	}
	var best *Version
	var problems []string
	for _, p := range manifests {
		v, err := resolve(s.cfg.Prefix, p, lookup)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case abupdate.CompareVersions(v.Version, s.cfg.Running) <= 0:
		case best == nil || abupdate.CompareVersions(v.Version, best.Version) > 0:
			best = &v
		}
	}
	slices.Sort(problems)
	return best, problems
}

// Install asks the installer to install version, which must be the staged one; with
// reboot, the appliance restarts into it once it is written.
func (s *Service) Install(ctx context.Context, actor, version string, reboot bool) (Request, error) {
	s.mu.Lock()
	staged := s.staged
	s.mu.Unlock()
	switch {
	case s.cfg.Repo == "":
		return Request{}, fmt.Errorf("selfupdate: install %s: %w: no update repository is configured (selfupdate.repository)", version, ErrRefused)
	case staged == nil:
		return Request{}, fmt.Errorf("selfupdate: install %s: %w: no newer version is staged", version, ErrRefused)
	case staged.Version != version:
		return Request{}, fmt.Errorf("selfupdate: install %s: %w: the staged version is %s", version, ErrRefused, staged.Version)
	}
	return s.request(ctx, Request{Action: ActionInstall, Version: version, Reboot: reboot, RequestedBy: actor})
}

// Rollback asks the installer to mark the running version bad, so that the previous
// good one boots next (at once, with reboot).
func (s *Service) Rollback(ctx context.Context, actor string, reboot bool) (Request, error) {
	es, err := abupdate.ListEntries(s.cfg.ESP)
	if err != nil {
		return Request{}, fmt.Errorf("selfupdate: rollback: %w: %w", ErrRefused, err)
	}
	if rollbackTarget(es, s.cfg.Running) == "" {
		return Request{}, fmt.Errorf("selfupdate: rollback: %w: no other good version is installed", ErrRefused)
	}
	return s.request(ctx, Request{Action: ActionRollback, Reboot: reboot, RequestedBy: actor})
}

// rollbackTarget is the version a rollback would start: the newest good one that is
// not running.
func rollbackTarget(es []abupdate.Entry, running string) string {
	for _, e := range es {
		if e.State() == abupdate.Good && e.Version != running {
			return e.Version
		}
	}
	return ""
}

func (s *Service) request(ctx context.Context, r Request) (Request, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	if p, _ := s.pending(); p != nil {
		return Request{}, fmt.Errorf("selfupdate: %s: %w: the %s requested by %s at %s is not done yet",
			r.Action, ErrRefused, p.Action, p.RequestedBy, p.RequestedAt.UTC().Format(time.RFC3339))
	}
	r.ID, r.RequestedAt = newID(), s.opts.Clock.Now().UTC()
	if _, err := ParseRequest(mustJSON(r)); err != nil { // what the installer will check
		return Request{}, err
	}
	if s.opts.Events != nil {
		if err := s.opts.Events.Requested(ctx, r); err != nil {
			return Request{}, fmt.Errorf("selfupdate: %s: not recorded, so not requested: %w", r.Action, err)
		}
	}
	if err := writeFile(s.cfg.Dir, RequestFile, r); err != nil {
		return Request{}, fmt.Errorf("selfupdate: %s: %w", r.Action, err)
	}
	s.met.requests.WithLabelValues(r.Action).Inc()
	s.log.Info("appliance update requested", "action", r.Action, "version", r.Version, "by", r.RequestedBy, "reboot", r.Reboot)
	return r, nil
}

// pending returns the request waiting for the installer or being applied, and whether
// it is being applied.
func (s *Service) pending() (*Request, bool) {
	for _, f := range []string{ApplyingFile, RequestFile} {
		data, err := readFile(filepath.Join(s.cfg.Dir, f))
		if err != nil {
			continue
		}
		r, err := ParseRequest(data)
		if err != nil {
			r = Request{Action: "unreadable request", RequestedBy: "?"}
		}
		return &r, f == ApplyingFile
	}
	return nil, false
}

// collect records a new result of the installer once: Events.Finished, then the file is
// renamed to SeenFile (on failure it stays and is tried again).
func (s *Service) collect(ctx context.Context) {
	path := filepath.Join(s.cfg.Dir, ResultFile)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var r Result
	if err == nil {
		r, err = ParseResult(data)
	}
	if err == nil && s.opts.Events != nil {
		err = s.opts.Events.Finished(ctx, r)
	}
	if err == nil {
		err = os.Rename(path, filepath.Join(s.cfg.Dir, SeenFile))
	}
	s.mu.Lock()
	s.collectErr = nil
	if err != nil {
		s.collectErr = fmt.Errorf("selfupdate: the installer's result %s: %w", path, err)
	} else {
		s.last = &r
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("installer result not recorded", "err", err)
		return
	}
	s.met.results.WithLabelValues(r.Action, map[bool]string{true: "ok", false: "failed"}[r.OK]).Inc()
	s.log.Info("appliance update finished", "action", r.Action, "version", r.Version, "ok", r.OK, "err", r.Error)
}

// Entry is one installed version on the status page.
type Entry struct {
	Version   string `json:"version"`
	State     string `json:"state"` // good, pending, bad
	Running   bool   `json:"running"`
	TriesLeft int    `json:"tries_left,omitempty"`
}

// Status is the appliance's versions for the status page.
type Status struct {
	Running    string    `json:"running"`
	Repository string    `json:"repository"`
	Entries    []Entry   `json:"entries"`
	ESPError   string    `json:"esp_error,omitempty"`
	RollbackTo string    `json:"rollback_to,omitempty"`
	Checked    time.Time `json:"checked"`
	Published  []string  `json:"published_problems,omitempty"`
	Available  *Version  `json:"available,omitempty"`
	Staged     bool      `json:"staged"`
	StageError string    `json:"stage_error,omitempty"`
	Request    *Request  `json:"request,omitempty"` // waiting for the installer, or being applied
	Applying   bool      `json:"applying"`
	Last       *Result   `json:"last_result,omitempty"`
}

// Status returns the installed versions (from the ESP's entry names), the newest
// published one, the installer's pending request and its last recorded result.
func (s *Service) Status() Status {
	st := Status{Running: s.cfg.Running, Repository: s.cfg.Repo}
	if es, err := abupdate.ListEntries(s.cfg.ESP); err != nil {
		st.ESPError = err.Error()
	} else {
		for _, e := range es {
			st.Entries = append(st.Entries, Entry{Version: e.Version, State: string(e.State()), Running: e.Version == s.cfg.Running, TriesLeft: e.TriesLeft})
		}
		st.RollbackTo = rollbackTarget(es, s.cfg.Running)
	}
	s.mu.Lock()
	st.Checked, st.Published, st.Available = s.checked, s.published, s.available
	st.Staged = s.staged != nil && s.available != nil && s.staged.Version == s.available.Version
	if s.stageErr != nil {
		st.StageError = s.stageErr.Error()
	}
	st.Last = s.last
	s.mu.Unlock()
	st.Request, st.Applying = s.pending()
	return st
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

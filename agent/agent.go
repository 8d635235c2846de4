package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/agentapi/clienttls"
	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

// Options are an Agent's collaborators; only Logger is required.
type Options struct {
	Logger  *slog.Logger
	Clock   clock.Clock // nil: the real clock
	Version string      // reported as agent_version
	// HTTPClient talks to the appliance (nil: one with sane timeouts that pins the
	// appliance's certificate and presents the agent's client certificate over https).
	HTTPClient *http.Client
	// DownloadWriter, when set, wraps the writer of each download's partial file
	// (tests simulate a full disk with it).
	DownloadWriter func(io.Writer) io.Writer
	// Facts gathers the inventory facts (nil: GatherFacts).
	Facts func(ctx context.Context) agentapi.Facts
	// FreeSpace measures the bytes free on dir's file system for the min_free_bytes
	// pre-check (nil: the file system's own count).
	FreeSpace func(dir string) (uint64, error)
	// Power reads the device's power status (nil: the OS's; on Linux from the
	// config's power_supply_dir).
	Power func(sysfsRoot string) (PowerStatus, error)
	// GOOS is the OS whose restore point method is used (empty: runtime.GOOS).
	GOOS string
}

// Poll bounds: the contract asks for at least 10s between polls.
const (
	MinPoll     = 10 * time.Second
	DefaultPoll = 5 * time.Minute
	factsMaxAge = time.Hour
)

// Agent is one endpoint's agent. Run polls until its ctx ends; Cycle does one round
// (tests drive it directly). An Agent is safe for concurrent use, but cycles do not
// overlap: a second one waits for the first.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.Clock
	client *client
	trust  map[string]*trust
	facts  func(ctx context.Context) agentapi.Facts
	ver    string

	freeSpace func(dir string) (uint64, error)
	power     func(sysfsRoot string) (PowerStatus, error)
	goos      string
	tls       *clienttls.State
	dlWriter  func(io.Writer) io.Writer

	cycleMu   sync.Mutex // one cycle at a time
	mu        sync.Mutex
	cred      credential
	lastFacts time.Time
	reported  map[int64]string // deployment -> last progress state sent
	postponed map[int64]string // deployment -> last postponement reported
}

// credential is what enrolment gave the agent, kept in state_dir/credential (0600).
type credential struct {
	AgentID    string `json:"agent_id"`
	Credential string `json:"credential"`
}

// New checks the config, reads the trusted roots and makes the state directory.
func New(cfg Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		return nil, errors.New("agent: a logger is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	ts, err := loadTLSState(cfg.StateDir, cfg.ApplianceFingerprint)
	if err != nil {
		return nil, err
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	hc := opts.HTTPClient
	if hc == nil {
		if hc, err = newHTTPClient(cfg.CAFile, ts, clk.Now); err != nil {
			return nil, err
		}
	}
	a := &Agent{tls: ts, dlWriter: opts.DownloadWriter,
		cfg: cfg, log: opts.Logger, clock: opts.Clock, facts: opts.Facts, ver: opts.Version,
		trust: map[string]*trust{}, reported: map[int64]string{}, freeSpace: opts.FreeSpace,
		postponed: map[int64]string{}, power: opts.Power, goos: opts.GOOS,
	}
	if a.power == nil {
		a.power = osPower
	}
	if a.goos == "" {
		a.goos = runtime.GOOS
	}
	if a.freeSpace == nil {
		a.freeSpace = diskFree
	}
	a.clock = clk
	if a.ver == "" {
		a.ver = "dev"
	}
	if a.facts == nil {
		a.facts = func(ctx context.Context) agentapi.Facts { return GatherFacts(ctx, a.ver) }
	}
	a.client = &client{base: cfg.baseURL(), http: hc, credential: a.credential, userAgent: "patchgate-agent/" + a.ver, now: a.clock.Now}
	for repo, rootFile := range cfg.Repos {
		root, err := os.ReadFile(rootFile)
		if err != nil {
			return nil, fmt.Errorf("agent: trusted root of %s: %w", repo, err)
		}
		if _, err := metadata.Root().FromBytes(root); err != nil {
			return nil, fmt.Errorf("agent: trusted root of %s: %s is not a TUF root: %w", repo, rootFile, err)
		}
		a.trust[repo] = &trust{
			repo: repo, pinned: root, http: hc,
			metaURL: a.client.resolve("/repos/" + pathEscape(repo) + "/metadata/"),
			dir:     filepath.Join(cfg.StateDir, "tuf", repo),
			now:     a.clock.Now,
		}
	}
	if data, err := os.ReadFile(a.credPath()); err == nil {
		if err := json.Unmarshal(data, &a.cred); err != nil {
			a.log.Warn("ignoring an unreadable credential file; enrolling again", "file", a.credPath(), "err", err)
			a.cred = credential{}
		}
	}
	return a, nil
}

func pathEscape(s string) string { return strings.ReplaceAll(s, "/", "%2F") }

func newHTTPClient(caFile string, ts *clienttls.State, now func() time.Time) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       90 * time.Second,
	}
	pool, err := conf.CertPool(caFile)
	if err != nil {
		return nil, fmt.Errorf("agent: ca_file: %w", err)
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	tr.TLSClientConfig = ts.Config(base, now)
	return &http.Client{Transport: tr}, nil
}

func (a *Agent) credPath() string { return filepath.Join(a.cfg.StateDir, "credential") }

func (a *Agent) credential() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cred.Credential
}

// ID returns the agent's id once enrolled, else "".
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cred.AgentID
}

// Run polls the appliance until ctx is done, waiting between cycles as the appliance
// says (poll interval, Retry-After), never less than MinPoll. It returns nil when ctx
// ends and an error only when going on is pointless (the enrolment token is refused).
func (a *Agent) Run(ctx context.Context) error {
	backoff := MinPoll
	for {
		next, err := a.Cycle(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case statusOf(err) == http.StatusForbidden && a.ID() == "":
			return err
		case err != nil && next == 0: // no check-in: back off
			a.log.Warn("cycle failed", "err", err, "retry_in", backoff)
			next, backoff = backoff, min(2*backoff, DefaultPoll)
		case err != nil: // checked in; some offer failed (and was reported where it could be)
			a.log.Warn("cycle finished with errors", "err", err, "next_poll", next)
			backoff = MinPoll
		default:
			backoff = MinPoll
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(next):
		}
	}
}

// Cycle does one round: enrol if needed, check in (with fresh facts at most hourly),
// work on every offer, and return how long to wait before the next round. When the
// check-in itself fails it returns 0 and the error; errors of single offers come with
// the wait as usual.
func (a *Agent) Cycle(ctx context.Context) (time.Duration, error) {
	a.cycleMu.Lock()
	defer a.cycleMu.Unlock()
	if err := a.ensureEnrolled(ctx); err != nil {
		return 0, err
	}
	resp, err := a.checkin(ctx)
	if statusOf(err) == http.StatusUnauthorized && a.tls.HasClient() && clienttls.CertExpired(err.Error()) {
		// Away longer than the certificate lived: the appliance renews an expired one.
		if rerr := a.renew(ctx); rerr == nil {
			resp, err = a.checkin(ctx)
		}
	}
	if statusOf(err) == http.StatusUnauthorized { // revoked or forgotten: enrol again
		a.log.Warn("credential refused; enrolling again", "err", err)
		a.forgetCredential()
		if err := a.ensureEnrolled(ctx); err != nil {
			return 0, err
		}
		resp, err = a.checkin(ctx)
	}
	if err != nil {
		return 0, err
	}
	if resp.RenewCertificate {
		if err := a.renew(ctx); err != nil {
			a.log.Warn("client certificate renewal failed; trying again next round", "err", err)
		}
	}
	next := DefaultPoll
	if resp.PollIntervalSeconds > 0 {
		next = time.Duration(resp.PollIntervalSeconds) * time.Second
	}
	var errs []error
	for _, off := range resp.Deployments {
		wait, err := a.work(ctx, off)
		if err != nil {
			errs = append(errs, err)
		}
		if wait > 0 {
			next = min(next, wait)
		}
	}
	return max(next, MinPoll), errors.Join(errs...)
}

func (a *Agent) ensureEnrolled(ctx context.Context) error {
	if a.credential() != "" {
		return nil
	}
	tok, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return fmt.Errorf("agent: enrolment token: %w", err)
	}
	f := a.facts(ctx)
	a.mu.Lock()
	a.lastFacts = time.Time{} // send the full facts at the first check-in
	a.mu.Unlock()
	req := agentapi.EnrollRequest{
		Token: strings.TrimSpace(string(tok)), Facts: agentapi.Facts{Hostname: f.Hostname, OS: f.OS,
			OSVersion: f.OSVersion, Arch: f.Arch, AgentVersion: a.ver},
	}
	var resp agentapi.EnrollResponse
	err = a.tls.Enrol(ctx, f.Hostname, a.client.base.Scheme == "https", func(ctx context.Context, csr string) (string, error) {
		req.CSR = csr
		var err error
		resp, err = a.client.enroll(ctx, req)
		return resp.ClientCert, err
	})
	if err != nil {
		return err
	}
	a.client.http.CloseIdleConnections() // the next handshake presents the client certificate
	c := credential{AgentID: resp.AgentID, Credential: resp.Credential}
	data, _ := json.Marshal(c)
	if err := atomicfile.Write(a.credPath(), data, 0o600); err != nil {
		return fmt.Errorf("agent: keep credential: %w", err)
	}
	a.mu.Lock()
	a.cred = c
	a.mu.Unlock()
	a.log.Info("enrolled", "agent_id", c.AgentID)
	return nil
}

func (a *Agent) forgetCredential() {
	a.mu.Lock()
	a.cred = credential{}
	a.mu.Unlock()
	os.Remove(a.credPath())
	a.tls.ForgetClient()
}

// renew asks the appliance for a new client certificate for a new key.
func (a *Agent) renew(ctx context.Context) error {
	err := a.tls.Renew(ctx, a.ID(), func(ctx context.Context, req agentapi.RenewRequest) (agentapi.RenewResponse, error) {
		var out agentapi.RenewResponse
		err := a.client.call(ctx, "renew certificate", http.MethodPost, "/agent/v1/certificate", req, &out, true)
		return out, err
	})
	if err != nil {
		return err
	}
	a.client.http.CloseIdleConnections()
	a.log.Info("client certificate renewed")
	return nil
}

// checkin reports the facts: all of them at most hourly, else only the small ones.
func (a *Agent) checkin(ctx context.Context) (agentapi.OffersResponse, error) {
	f := a.facts(ctx)
	now := a.clock.Now()
	a.mu.Lock()
	full := a.lastFacts.IsZero() || now.Sub(a.lastFacts) >= factsMaxAge
	a.mu.Unlock()
	if !full {
		f.Packages = nil
	}
	resp, err := a.client.checkin(ctx, f)
	if err == nil && full {
		a.mu.Lock()
		a.lastFacts = now
		a.mu.Unlock()
	}
	return resp, err
}

// work moves one offer as far as it may go now and says when to look again (0: no
// opinion).
func (a *Agent) work(ctx context.Context, off agentapi.Offer) (time.Duration, error) {
	log := a.log.With("deployment", off.ID, "release", off.Release.Name, "attempt", off.Attempt)
	retry := time.Duration(off.RetryAfterSeconds) * time.Second
	// An outcome that could not be delivered last time is sent again, not redone.
	if o, ok := a.pendingOutcome(off); ok {
		return 0, a.sendOutcome(ctx, log, off, o)
	}
	// An install this attempt began and never finished is reported, not run twice.
	if began, ok := a.interruptedInstall(off); ok {
		o := agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Detail: "the install began at " + began +
			" and did not finish: the agent or the machine stopped during it (power lost, the agent killed, or a sleep it did not wake from);" +
			" this attempt is reported failed rather than run twice, and the next attempt's check command decides whether the release is installed"}
		log.Warn("install interrupted", "began", began)
		a.keepOutcome(off, o)
		os.Remove(a.installingPath(off))
		return 0, a.sendOutcome(ctx, log, off, o)
	}
	tr, ok := a.trust[off.Repo]
	if !ok {
		return 0, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1),
			Detail: fmt.Sprintf("this agent has no trusted root for repository %q", off.Repo)})
	}
	if len(off.Targets) == 0 {
		return 0, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Detail: "the offer lists no targets"})
	}
	if !off.DownloadAllowed {
		return retry, nil
	}
	if err := a.progress(ctx, off, agentapi.StateDownloading, ""); err != nil {
		return waitOf(err, retry), notWait(err)
	}
	if c, off2 := a.clockCheck(); off2 { // before TUF, which judges expiry on this clock
		return a.postpone(ctx, log, off, []agentapi.Check{c})
	}
	ps, err := a.plans(ctx, tr, off)
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		log.Warn("offer refused", "reason", rf.detail)
		return 0, errors.Join(err, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Detail: rf.detail}))
	case err != nil && transient(err):
		return retry, err
	case err != nil:
		return 0, errors.Join(err, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1),
			Detail: "TUF verification of the metadata failed: " + err.Error()}))
	}
	if cs := a.prechecks(ctx, off, ps, beforeDownload); failedChecks(cs) != "" {
		return a.postpone(ctx, log, off, cs)
	}
	for i, p := range ps {
		file, err := a.download(ctx, p.target.URL, p.info)
		var we *waitError
		switch {
		case errors.As(err, &we):
			log.Info("download deferred by the appliance", "target", p.target.Path, "retry_after", we.after)
			return we.after, nil
		case errors.Is(err, ErrDiskFull):
			return a.postpone(ctx, log, off, []agentapi.Check{{Name: agentapi.CheckDiskFree, Value: "full", Need: "room for the download", Detail: err.Error()}})
		case errors.Is(err, ErrVerification):
			log.Warn("downloaded bytes failed TUF verification; deleted", "target", p.target.Path, "err", err)
			return 0, errors.Join(err, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Detail: err.Error()}))
		case err != nil:
			return retry, err
		}
		ps[i].file = file
	}
	if err := a.progress(ctx, off, agentapi.StateDownloaded, ""); err != nil {
		return waitOf(err, retry), notWait(err)
	}
	if !off.InstallAllowed {
		return retry, nil
	}
	if !off.Window.ClosesAt.IsZero() && !a.clock.Now().Before(off.Window.ClosesAt) {
		return retry, nil // never start an install after the window closed
	}
	acts, err := a.actions(off, ps)
	if err != nil {
		return 0, errors.Join(err, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Detail: err.Error()}))
	}
	cs := a.prechecks(ctx, off, ps, beforeInstall)
	if failedChecks(cs) != "" {
		return a.postpone(ctx, log, off, cs)
	}
	return a.install(ctx, log, off, acts, cs, requiresRestorePoint(ps))
}

// requiresRestorePoint reports whether any target's signed instructions require a
// restore point.
func requiresRestorePoint(ps []plan) bool {
	return slices.ContainsFunc(ps, func(p plan) bool { return p.step != nil && p.step.RequireRestorePoint })
}

// install runs the actions' checks, then (after reporting installing) the installs of
// those whose check did not say installed, stopping at the first failure, and reports
// the outcome; a reboot the instructions ask for follows a successful install.
func (a *Agent) install(ctx context.Context, log *slog.Logger, off agentapi.Offer, acts []action, checks []agentapi.Check, needRestore bool) (time.Duration, error) {
	retry := time.Duration(off.RetryAfterSeconds) * time.Second
	dir := a.downloadDir()
	var todo []action
	var tails []string
	for _, act := range acts {
		if len(act.check) > 0 {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			r := run(cctx, act.check, act.data, dir)
			cancel()
			if r.Err == nil {
				log.Info("target already installed; skipping", "target", act.target)
				tails = append(tails, r.LogTail)
				continue
			}
		}
		todo = append(todo, act)
	}
	if len(todo) == 0 {
		log.Info("release already installed; skipping")
		return 0, a.sendOutcome(ctx, log, off, agentapi.OutcomeRequest{Status: agentapi.OutcomeSkipped, ExitCode: new(0), LogTail: joinTails(tails), Detail: "the check command says the release is installed"})
	}
	if err := a.progress(ctx, off, agentapi.StateInstalling, ""); err != nil {
		return waitOf(err, retry), notWait(err)
	}
	rp := a.restorePoint(ctx, a.goos, todo[0].data)
	log.Info("restore point", "status", rp.Status, "method", rp.Method, "detail", rp.Detail)
	if needRestore && rp.Status != agentapi.RestoreCreated {
		o := agentapi.OutcomeRequest{Status: agentapi.OutcomeFailed, ExitCode: new(-1), Checks: checks, RestorePoint: &rp,
			Detail: agentapi.DetailRestorePoint + "the release requires one and it is " + rp.Status + restoreWhy(rp)}
		a.keepOutcome(off, o)
		return 0, a.sendOutcome(ctx, log, off, o)
	}
	o := agentapi.OutcomeRequest{Status: agentapi.OutcomeSucceeded, Checks: checks, RestorePoint: &rp}
	a.keepFile(a.installingPath(off), []byte(a.clock.Now().UTC().Format(time.RFC3339)), "could not mark the install as begun; an interruption will not be recognised")
	reboot := false
	for _, act := range todo {
		log.Info("installing", "target", act.target)
		ictx, cancel := context.WithTimeout(ctx, a.cfg.installTimeout())
		r := run(ictx, act.command, act.data, dir)
		cancel()
		tails = append(tails, r.LogTail)
		o.ExitCode = new(r.ExitCode)
		if r.Err != nil {
			o.Status, o.Detail = agentapi.OutcomeFailed, r.Err.Error()
			break
		}
		reboot = reboot || act.reboot
	}
	o.LogTail = joinTails(tails)
	reboot = reboot && o.Status == agentapi.OutcomeSucceeded
	switch {
	case !reboot:
	case len(a.cfg.RebootCommand) > 0:
		o.Detail = "installed; rebooting to finish"
	default:
		o.Detail = "installed; a reboot is needed to finish (this agent has no reboot_command)"
	}
	a.keepOutcome(off, o)
	os.Remove(a.installingPath(off))
	err := a.sendOutcome(ctx, log, off, o)
	if reboot && len(a.cfg.RebootCommand) > 0 {
		log.Warn("rebooting as the signed install instructions ask", "command", a.cfg.RebootCommand)
		if r := run(ctx, a.cfg.RebootCommand, todo[0].data, dir); r.Err != nil {
			log.Warn("reboot command failed", "err", r.Err, "output", r.LogTail)
		}
	}
	return 0, err
}

func restoreWhy(rp agentapi.RestorePoint) string {
	if rp.Detail == "" {
		return ""
	}
	return ": " + rp.Detail
}

// notWait is err unless it only asks to wait.
func notWait(err error) error {
	var we *waitError
	if errors.As(err, &we) {
		return nil
	}
	return err
}

// transient reports whether a TUF metadata error may go away by itself (network,
// server trouble) rather than being a verification failure.
func transient(err error) bool {
	var he *metadata.ErrDownloadHTTP
	if errors.As(err, &he) {
		return he.StatusCode >= 500 || he.StatusCode == http.StatusTooManyRequests
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// waitOf is the wait an error asks for, else def.
func waitOf(err error, def time.Duration) time.Duration {
	var we *waitError
	if errors.As(err, &we) {
		return we.after
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	return def
}

// progress reports a state once per deployment (the appliance needs each only once).
// A 409 with a retry time (installing while the window is closed) is a wait, not an
// error.
func (a *Agent) progress(ctx context.Context, off agentapi.Offer, state, detail string) error {
	err := a.sendProgress(ctx, off, state, detail)
	if statusOf(err) == http.StatusConflict && waitOf(err, 0) > 0 {
		a.log.Info("appliance says not now", "deployment", off.ID, "state", state, "err", err)
		return &waitError{op: err.Error(), after: waitOf(err, 0)}
	}
	return err
}

func (a *Agent) sendProgress(ctx context.Context, off agentapi.Offer, state, detail string) error {
	order := []string{agentapi.StateOffered, agentapi.StateDownloading, agentapi.StateDownloaded, agentapi.StateInstalling}
	a.mu.Lock()
	last := a.reported[off.ID]
	a.mu.Unlock()
	if slices.Index(order, off.State) >= slices.Index(order, state) || last == state {
		return nil
	}
	if err := a.client.progress(ctx, off.ID, state, detail); err != nil {
		return err
	}
	a.mu.Lock()
	a.reported[off.ID] = state
	a.mu.Unlock()
	return nil
}

// Outcomes are written to state_dir/outcomes before they are sent, so an install is
// never run twice because its report got lost.
func (a *Agent) outcomePath(off agentapi.Offer) string {
	return filepath.Join(a.cfg.StateDir, "outcomes", fmt.Sprintf("%d-%d.json", off.ID, off.Attempt))
}

// installingPath marks an install begun: written before the first install command of
// an attempt runs and removed once its outcome is kept. Found by a later cycle, it
// means the install never finished.
func (a *Agent) installingPath(off agentapi.Offer) string {
	return filepath.Join(a.cfg.StateDir, "outcomes", fmt.Sprintf("%d-%d.installing", off.ID, off.Attempt))
}

// interruptedInstall reports when an install of this attempt began that never
// finished.
func (a *Agent) interruptedInstall(off agentapi.Offer) (string, bool) {
	data, err := os.ReadFile(a.installingPath(off))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(data)), true
}

func (a *Agent) keepOutcome(off agentapi.Offer, o agentapi.OutcomeRequest) {
	data, _ := json.Marshal(o)
	a.keepFile(a.outcomePath(off), data, "could not keep the outcome; it is sent now only")
}

// keepFile writes data to path in the state directory (0600, its folder 0700), and
// logs warning when it cannot: what it keeps helps after a restart but is not required.
func (a *Agent) keepFile(path string, data []byte, warning string) {
	err := os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = atomicfile.Write(path, data, 0o600)
	}
	if err != nil {
		a.log.Warn(warning, "err", err)
	}
}

func (a *Agent) pendingOutcome(off agentapi.Offer) (agentapi.OutcomeRequest, bool) {
	data, err := os.ReadFile(a.outcomePath(off))
	if err != nil {
		return agentapi.OutcomeRequest{}, false
	}
	var o agentapi.OutcomeRequest
	if json.Unmarshal(data, &o) != nil {
		return agentapi.OutcomeRequest{}, false
	}
	return o, true
}

func (a *Agent) sendOutcome(ctx context.Context, log *slog.Logger, off agentapi.Offer, o agentapi.OutcomeRequest) error {
	resp, err := a.client.outcome(ctx, off.ID, o)
	st := statusOf(err)
	if err != nil && st != http.StatusConflict && st != http.StatusNotFound {
		return err // kept on disk; sent again next cycle
	}
	os.Remove(a.outcomePath(off))
	a.mu.Lock()
	delete(a.reported, off.ID)
	a.mu.Unlock()
	if err != nil {
		log.Info("appliance no longer takes this outcome", "status", o.Status, "err", err)
		return nil
	}
	attrs := []any{"status", o.Status}
	if o.ExitCode != nil { // the agent always sets it
		attrs = append(attrs, "exit_code", *o.ExitCode)
	}
	log.Info("outcome reported", append(attrs, "state", resp.State, "retry_at", resp.RetryAt)...)
	return nil
}

// TargetInfo is exposed for tests and tools: what the repository's verified metadata,
// fetched through the appliance, says of a target path.
func (a *Agent) TargetInfo(ctx context.Context, repo, path string) (tuf.TargetInfo, error) {
	tr, ok := a.trust[repo]
	if !ok {
		return tuf.TargetInfo{}, fmt.Errorf("agent: no trusted root for repository %q", repo)
	}
	return tr.targetInfo(ctx, path)
}

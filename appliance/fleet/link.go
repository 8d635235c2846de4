package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/agentapi/clienttls"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/metric"
)

// DownstreamTag (rollout.DownstreamTag) is the tag that makes an enrolment token (and every appliance enrolled
// with it) downstream: the parent's gate lets such a child fetch any target of an
// approved rollout, whatever the child's own rings will need, outside windows.
const DownstreamTag = rollout.DownstreamTag

// Options are a Link's collaborators.
type Options struct {
	Parent Parent
	// Site is the name the child gives itself on the parent (the config's site, else
	// the host name).
	Site    string
	Version string
	// StateDir keeps the credential (STATE/fleet).
	StateDir string
	Clock    clock.Clock
	Logger   *slog.Logger
	// Registerer takes the fleet metrics (nil: registered nowhere).
	Registerer prometheus.Registerer
	// HTTPClient talks to the parent (nil: a client with a 30s timeout, over TLS with
	// the pin and the client certificate when the parent's URL is https).
	HTTPClient *http.Client
	// Expiry is when the first of the parent's repositories' verified metadata expires
	// (zero: none verified yet), for the health text while the parent is away.
	Expiry func() time.Time
}

// Link is the child's side of a parent: it enrols once with a downstream token, checks
// in every parent.check_every (which tells the parent the child is alive and the child
// how far their clocks differ), puts the child's credential on every request to the
// parent (Transport), and says in Health what is wrong between the tiers. Over https
// it is a client of the parent's agent TLS listener as an agent is (agentapi/clienttls):
// the parent's certificate pinned at enrolment, a client certificate from a CSR signed
// at enrolment and renewed when the parent asks. After a 401 it enrols again with
// parent.enrol_token if it has one. It is a Service; safe for concurrent use.
type Link struct {
	opts    Options
	client  *http.Client
	met     linkMetrics
	tls     *clienttls.State // nil over http
	tlsConf *tls.Config
	kick    chan struct{} // a request to the parent got 401: check (and re-enrol) now

	mu          sync.Mutex
	cred        credential
	lastAttempt time.Time
	lastSuccess time.Time
	lastErr     error
	refused     bool // the parent answered 401: credential revoked or unknown
	skew        time.Duration
	skewKnown   bool
	transports  []*http.Transport // made by tlsTransport: their idle connections go on a new client certificate
}

type linkMetrics struct {
	up, lastSuccess, skew prometheus.Gauge
	checks                *prometheus.CounterVec
}

// credential is what enrolment returned, kept in STATE/fleet/credential.json (0600).
type credential struct {
	Parent     string `json:"parent"`
	AgentID    string `json:"agent_id"`
	Credential string `json:"credential"`
}

// parseCredential reads a credential file's bytes.
func parseCredential(data []byte) (credential, error) {
	var c credential
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return credential{}, fmt.Errorf("fleet: credential file: %w", err)
	}
	if c.AgentID == "" || len(c.AgentID) > 64 || !strings.HasPrefix(c.Credential, "pga1."+c.AgentID+".") || len(c.Credential) > 256 || c.Parent == "" {
		return credential{}, errors.New("fleet: credential file: want parent, agent_id and its pga1 credential")
	}
	return c, nil
}

// New builds the Link and loads the credential enrolled earlier, if any. A credential
// for another parent URL is ignored (the child enrols again).
func New(opts Options) (*Link, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		return nil, errors.New("fleet: logger is required")
	}
	if opts.Expiry == nil {
		opts.Expiry = func() time.Time { return time.Time{} }
	}
	l := &Link{opts: opts, client: opts.HTTPClient, kick: make(chan struct{}, 1)}
	if opts.Parent.HTTPS() {
		ts, err := clienttls.Load(clienttls.Options{Dir: opts.StateDir, Fingerprint: opts.Parent.Fingerprint, Op: "fleet: tls", FingerprintKey: "parent.fingerprint"})
		if err != nil {
			return nil, err
		}
		base := &tls.Config{MinVersion: tls.VersionTLS12}
		if base.RootCAs, err = conf.CertPool(opts.Parent.CAFile); err != nil {
			return nil, fmt.Errorf("fleet: parent.ca_file: %w", err)
		}
		l.tls, l.tlsConf = ts, ts.Config(base, opts.Clock.Now)
	}
	if l.client == nil {
		l.client = &http.Client{Timeout: 30 * time.Second, Transport: l.tlsTransport(nil)}
	}
	ms := metric.New(opts.Registerer, "fleet")
	l.met = linkMetrics{
		up:          ms.Gauge("parent_up", "1 when the last check-in with the parent appliance succeeded, else 0."),
		lastSuccess: ms.Gauge("parent_last_success_timestamp_seconds", "When the parent last answered a check-in, in Unix seconds (0: never)."),
		skew:        ms.Gauge("parent_clock_skew_seconds", "This appliance's clock minus the parent's, measured at the last check-in."),
		checks:      ms.CounterVec("parent_checks_total", "Check-ins with the parent by result (ok, refused, unreachable, error).", "result"),
	}
	if err := ms.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(l.credPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("fleet: %w", err)
	default:
		c, err := parseCredential(data)
		if err != nil {
			opts.Logger.Warn("ignoring an unreadable credential file; enrolling again", "file", l.credPath(), "err", err)
		} else if c.Parent == opts.Parent.base() {
			l.cred = c
		}
	}
	return l, nil
}

func (l *Link) credPath() string { return filepath.Join(l.opts.StateDir, "credential.json") }

// Name is the service's name.
func (l *Link) Name() string { return "fleet" }

// Ready is always true: the child serves what it verified whether the parent answers
// or not.
func (l *Link) Ready() bool { return true }

// Run checks in at once and then every parent.check_every until ctx ends; and at
// once when a request to the parent was refused with 401 (at most every 10s), so a
// revoked or rotated credential is replaced without waiting.
func (l *Link) Run(ctx context.Context) error {
	for {
		l.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-l.opts.Clock.After(l.opts.Parent.CheckEvery.D()):
		case <-l.kick:
			select {
			case <-ctx.Done():
				return nil
			case <-l.opts.Clock.After(10 * time.Second):
			}
		}
	}
}

// AgentID is the child's id on the parent, "" before enrolment.
func (l *Link) AgentID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cred.AgentID
}

// Check enrols if needed and checks in once, recording the outcome for Health and the
// metrics.
func (l *Link) Check(ctx context.Context) error {
	err := l.check(ctx)
	now := l.opts.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastAttempt, l.lastErr = now, err
	var se *statusError
	l.refused = errors.As(err, &se) && se.code == http.StatusUnauthorized
	result := "ok"
	switch {
	case err == nil:
		l.lastSuccess = now
		l.met.lastSuccess.Set(float64(now.UnixNano()) / 1e9)
	case l.refused:
		result = "refused"
	case se != nil:
		result = "error"
	default:
		result = "unreachable"
	}
	l.met.checks.WithLabelValues(result).Inc()
	l.met.up.Set(map[bool]float64{true: 1}[err == nil])
	if err != nil {
		l.opts.Logger.Warn("fleet: parent check-in failed", "parent", l.opts.Parent.base(), "err", err)
	}
	return err
}

// statusError is a parent's non-2xx answer.
type statusError struct {
	op   string
	code int
	msg  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("fleet: %s: parent answered %d %s", e.op, e.code, e.msg)
}

// reenrolError is a refused credential whose re-enrolment failed too.
type reenrolError struct{ refused, enrol error }

func (e *reenrolError) Error() string {
	return fmt.Sprintf("%v; enrolling again: %v", e.refused, e.enrol)
}

func (e *reenrolError) Unwrap() []error { return []error{e.refused, e.enrol} }

func unauthorized(err error) (*statusError, bool) {
	var se *statusError
	return se, errors.As(err, &se) && se.code == http.StatusUnauthorized
}

func (l *Link) check(ctx context.Context) error {
	l.mu.Lock()
	enrolled := l.cred.AgentID != ""
	l.mu.Unlock()
	if !enrolled {
		if err := l.enrol(ctx); err != nil {
			return err
		}
	}
	offers, err := l.checkIn(ctx)
	if se, ok := unauthorized(err); ok && l.tls != nil && l.tls.HasClient() && clienttls.CertExpired(se.msg) {
		// Away longer than the certificate lived: the parent renews an expired one.
		if rerr := l.renew(ctx); rerr == nil {
			offers, err = l.checkIn(ctx)
		}
	}
	if _, ok := unauthorized(err); ok {
		// Revoked or rotated on the parent: enrol again while the token lets us.
		if l.opts.Parent.EnrolToken.Value() == "" {
			return &reenrolError{refused: err, enrol: errNoToken}
		}
		l.opts.Logger.Warn("fleet: the parent refused the credential; enrolling again with parent.enrol_token", "parent", l.opts.Parent.base(), "err", err)
		if eerr := l.enrol(ctx); eerr != nil {
			return &reenrolError{refused: err, enrol: eerr}
		}
		if offers, err = l.checkIn(ctx); err != nil {
			return &reenrolError{refused: err, enrol: errors.New("the parent refused the new credential too")}
		}
	}
	if err != nil {
		return err
	}
	if offers.RenewCertificate && l.tls != nil {
		if err := l.renew(ctx); err != nil {
			l.opts.Logger.Warn("fleet: client certificate renewal failed; trying again at the next check-in", "err", err)
		}
	}
	return nil
}

// checkIn reports to the parent and measures the clock skew from its Date header.
func (l *Link) checkIn(ctx context.Context) (agentapi.OffersResponse, error) {
	var offers agentapi.OffersResponse
	facts := l.facts()
	sent := l.opts.Clock.Now()
	resp, err := l.call(ctx, "check in", "/agent/v1/checkin", facts, true)
	if err != nil {
		return offers, err
	}
	json.Unmarshal(resp.body, &offers) // only renew_certificate is read; a body without it asks nothing
	received := l.opts.Clock.Now()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		mid := sent.Add(received.Sub(sent) / 2)
		skew := mid.Sub(d).Truncate(time.Second)
		l.mu.Lock()
		l.skew, l.skewKnown = skew, true
		l.mu.Unlock()
		l.met.skew.Set(skew.Seconds())
	}
	return offers, nil
}

// renew asks the parent for a new client certificate (clienttls, as an agent does).
func (l *Link) renew(ctx context.Context) error {
	err := l.tls.Renew(ctx, l.AgentID(), func(ctx context.Context, req agentapi.RenewRequest) (agentapi.RenewResponse, error) {
		var out agentapi.RenewResponse
		resp, err := l.call(ctx, "renew certificate", "/agent/v1/certificate", req, true)
		if err == nil {
			err = json.Unmarshal(resp.body, &out)
		}
		return out, err
	})
	if err != nil {
		return err
	}
	l.closeIdle()
	l.opts.Logger.Info("fleet: client certificate renewed", "parent", l.opts.Parent.base())
	return nil
}

// closeIdle drops idle connections to the parent, so that the next handshake
// presents the client certificate just issued.
func (l *Link) closeIdle() {
	l.client.CloseIdleConnections()
	l.mu.Lock()
	ts := slices.Clone(l.transports)
	l.mu.Unlock()
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}

func (l *Link) facts() agentapi.Facts {
	return agentapi.Facts{Hostname: l.opts.Site, OS: "patchgate", AgentVersion: l.opts.Version}
}

// enrol exchanges parent.enrol_token for the child's own credential and keeps it;
// over https also a client certificate for a CSR (clienttls.State.Enrol, as an agent),
// and the parent's certificate is pinned.
func (l *Link) enrol(ctx context.Context) error {
	tok := l.opts.Parent.EnrolToken.Value()
	if tok == "" {
		return errNoToken
	}
	if err := os.MkdirAll(l.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("fleet: enrol: %w", err)
	}
	var c credential
	do := func(ctx context.Context, csr string) (string, error) {
		resp, err := l.call(ctx, "enrol", "/agent/v1/enroll", agentapi.EnrollRequest{Token: tok, CSR: csr, Facts: l.facts()}, false)
		if err != nil {
			return "", err
		}
		var er agentapi.EnrollResponse
		if err := json.Unmarshal(resp.body, &er); err != nil {
			return "", fmt.Errorf("fleet: enrol: the parent's answer: %w", err)
		}
		c = credential{Parent: l.opts.Parent.base(), AgentID: er.AgentID, Credential: er.Credential}
		return er.ClientCert, nil
	}
	var err error
	if l.tls != nil {
		l.tls.ForgetClient() // a certificate of an earlier enrolment names another agent
		err = l.tls.Enrol(ctx, l.opts.Site, true, do)
	} else {
		_, err = do(ctx, "")
	}
	if err != nil {
		return err
	}
	data, _ := json.Marshal(c)
	if _, err := parseCredential(data); err != nil {
		return fmt.Errorf("fleet: enrol: the parent's answer has no usable credential")
	}
	if err := atomicfile.Write(l.credPath(), data, 0o600); err != nil {
		return fmt.Errorf("fleet: enrol: keep the credential: %w", err)
	}
	l.mu.Lock()
	l.cred = c
	l.mu.Unlock()
	l.closeIdle()
	l.opts.Logger.Info("fleet: enrolled with the parent", "parent", c.Parent, "agent_id", c.AgentID, "mtls", l.tls != nil && l.tls.HasClient())
	return nil
}

var errNoToken = errors.New("fleet: not enrolled with the parent and parent.enrol_token is empty")

type response struct {
	Header http.Header
	body   []byte
}

// call POSTs body as JSON to the parent's path, with the credential when auth.
func (l *Link) call(ctx context.Context, op, path string, body any, auth bool) (*response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.opts.Parent.base()+path, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+l.credentialValue())
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		return nil, &statusError{op: op, code: resp.StatusCode, msg: e.Error}
	}
	return &response{Header: resp.Header, body: data}, nil
}

func (l *Link) credentialValue() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cred.Credential
}

// Transport wraps base (nil: http.DefaultTransport) so that every request to the
// parent carries the child's credential; the parent's gate knows the child by it.
// Over https, base (an *http.Transport) is cloned with the pinned, client-certificate
// TLS config; a 401 from the parent makes the link check in (and re-enrol) at once.
func (l *Link) Transport(base http.RoundTripper) http.RoundTripper {
	return authTransport{l: l, base: l.tlsTransport(base)}
}

// tlsTransport is base (nil: http.DefaultTransport), over https a clone of it with
// the link's TLS config.
func (l *Link) tlsTransport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	t, ok := base.(*http.Transport)
	if l.tlsConf == nil || !ok {
		return base
	}
	t = t.Clone()
	// A clone each: a Transport writes to its TLS config (NextProtos) on first use. The
	// clones share the pin and the client certificate (clienttls.State).
	t.TLSClientConfig = l.tlsConf.Clone()
	l.mu.Lock()
	l.transports = append(l.transports, t)
	l.mu.Unlock()
	return t
}

type authTransport struct {
	l    *Link
	base http.RoundTripper
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	cred := t.l.credentialValue()
	if cred == "" || !strings.HasPrefix(r.URL.String(), t.l.opts.Parent.base()+"/") || r.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+cred)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		select {
		case t.l.kick <- struct{}{}:
		default:
		}
	}
	return resp, err
}

// Health says what is wrong between this child and its parent.
func (l *Link) Health() []health.Problem {
	l.mu.Lock()
	defer l.mu.Unlock()
	parent := l.opts.Parent.base()
	var out []health.Problem
	if l.lastAttempt.IsZero() {
		return nil
	}
	now := l.opts.Clock.Now()
	switch {
	case errors.Is(l.lastErr, errNoToken) && !l.refused:
		out = append(out, health.Problem{Code: "parent-not-enrolled", Severity: health.Error,
			Text: fmt.Sprintf("not enrolled with parent %s: make a downstream enrolment token there (tag %s) and set parent.enrol_token", parent, DownstreamTag)})
	case l.refused && errors.As(l.lastErr, new(*statusError)) && l.cred.AgentID == "":
		out = append(out, health.Problem{Code: "parent-enrolment-refused", Severity: health.Error,
			Text: fmt.Sprintf("parent %s refused parent.enrol_token (unknown, spent, expired or revoked): make a new downstream enrolment token there (tag %s)", parent, DownstreamTag)})
	case errors.Is(l.lastErr, clienttls.ErrPinMismatch):
		out = append(out, health.Problem{Code: "parent-certificate-mismatch", Severity: health.Error,
			Text: fmt.Sprintf("parent %s presented another TLS certificate than the one pinned (parent.fingerprint, or the one seen at enrolment); nothing comes from it: %v", parent, l.lastErr)})
	case l.refused:
		why := "parent.enrol_token is empty"
		if re := (*reenrolError)(nil); errors.As(l.lastErr, &re) && !errors.Is(re.enrol, errNoToken) {
			why = fmt.Sprintf("enrolling again with parent.enrol_token failed (%v)", re.enrol)
		}
		out = append(out, health.Problem{Code: "parent-reenrolment-needed", Severity: health.Error,
			Text: fmt.Sprintf("re-enrolment needed: parent %s refused this appliance's credential (%s): it was revoked, rotated or is unknown there, and %s; nothing new comes from the parent until a new downstream token (tag %s) is set in parent.enrol_token", parent, l.cred.AgentID, why, DownstreamTag)})
	case l.lastErr != nil:
		since := "it has never answered"
		if !l.lastSuccess.IsZero() {
			since = fmt.Sprintf("it last answered at %s, %s ago", l.lastSuccess.UTC().Format(time.RFC3339), now.Sub(l.lastSuccess).Truncate(time.Second))
		}
		exp := l.opts.Expiry()
		p := health.Problem{Code: "parent-unreachable", Severity: health.Warning}
		switch {
		case exp.IsZero():
			p.Severity = health.Error
			p.Text = fmt.Sprintf("parent %s unreachable (%v); %s, and no metadata from it has been verified, so nothing of it is served", parent, l.lastErr, since)
		case now.After(exp):
			p.Severity = health.Error
			p.Text = fmt.Sprintf("parent %s unreachable (%v); %s, and the metadata verified from it expired at %s: its targets are no longer served", parent, l.lastErr, since, exp.UTC().Format(time.RFC3339))
		default:
			p.Text = fmt.Sprintf("parent %s unreachable (%v); %s; serving what was verified until its metadata expires at %s (in %s)", parent, l.lastErr, since, exp.UTC().Format(time.RFC3339), exp.Sub(now).Truncate(time.Minute))
		}
		out = append(out, p)
	}
	if l.skewKnown && (l.skew > l.opts.Parent.MaxSkew.D() || -l.skew > l.opts.Parent.MaxSkew.D()) {
		dir, d := "ahead of", l.skew
		if d < 0 {
			dir, d = "behind", -d
		}
		out = append(out, health.Problem{Code: "parent-clock-skew", Severity: health.Warning,
			Text: fmt.Sprintf("this appliance's clock is %s %s parent %s (more than parent.max_skew %s): metadata expiry and maintenance windows are judged on the wrong time; check NTP on both", d, dir, parent, l.opts.Parent.MaxSkew.D())})
	}
	return out
}

// Status is the parent link as the status page shows it.
type Status struct {
	Parent      string        `json:"parent"`
	AgentID     string        `json:"agent_id,omitempty"`
	Repos       []string      `json:"repositories"`
	LastAttempt time.Time     `json:"last_attempt,omitzero"`
	LastSuccess time.Time     `json:"last_success,omitzero"`
	LastError   string        `json:"last_error,omitempty"`
	Skew        time.Duration `json:"skew_ns"`
	// MTLS is set when the link holds a client certificate for the parent; Pin is the
	// parent certificate's pinned fingerprint.
	MTLS bool   `json:"mtls"`
	Pin  string `json:"pinned_certificate,omitempty"`
}

// Status returns the link's state.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Status{Parent: l.opts.Parent.base(), AgentID: l.cred.AgentID, Repos: l.opts.Parent.Repositories,
		LastAttempt: l.lastAttempt, LastSuccess: l.lastSuccess, Skew: l.skew}
	if l.lastErr != nil {
		st.LastError = l.lastErr.Error()
	}
	if l.tls != nil {
		st.MTLS, st.Pin = l.tls.HasClient(), l.tls.Pin()
	}
	return st
}

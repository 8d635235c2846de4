package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"

	"github.com/patchgate/patchgate/appliance/audit"
)

// failures counts consecutive failed logins from one source address.
type failures struct {
	count int
	until time.Time
}

// ErrLocked is returned while a user or a source address is locked out.
var ErrLocked = errors.New("too many failed attempts; try again later")

// errBadLogin is the one answer for an unknown user, a wrong password or a disabled
// account, so that names cannot be probed.
var errBadLogin = errors.New("wrong user name or password")

// lockout returns how long to lock after n consecutive failures (0: not yet).
func (a *Authority) lockout(n, after int) time.Duration {
	if n < after {
		return 0
	}
	d := a.policy.LockoutBase
	for i := after; i < n && d < a.policy.LockoutMax; i++ {
		d *= 2
	}
	return min(d, a.policy.LockoutMax)
}

// sourceLocked reports whether source is throttled now.
func (a *Authority) sourceLocked(source string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.sources[source]
	return f != nil && a.now().Before(f.until)
}

func (a *Authority) sourceFailed(source string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.sources[source]
	if f == nil {
		if len(a.sources) > 10000 { // bound memory under a spray of addresses
			clear(a.sources)
		}
		f = &failures{}
		a.sources[source] = f
	}
	f.count++
	if d := a.lockout(f.count, 3*a.policy.LockoutAfter); d > 0 {
		f.until = a.now().Add(d)
	}
}

func (a *Authority) sourceOK(source string) {
	a.mu.Lock()
	delete(a.sources, source)
	a.mu.Unlock()
}

// userFailed counts a failure against user inside the audit transaction of the failure.
func (a *Authority) userFailed(ctx context.Context, name, source, action, why string) {
	now := a.now()
	e := audit.Entry{Actor: clip(name), AuthMethod: "password", Source: source, Action: action, Object: "user/" + clip(name),
		Details: map[string]string{"reason": why}}
	a.audit.Apply(ctx, e, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT failures FROM auth_users WHERE name = ?`, name).Scan(&n); err != nil {
			return nil // unknown user: only the source is counted
		}
		n++
		locked := ""
		if d := a.lockout(n, a.policy.LockoutAfter); d > 0 {
			locked = ts(now.Add(d))
			e.Details["locked_for"] = d.String()
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET failures = ?, locked_until = ? WHERE name = ?`, n, locked, name)
		return err
	})
	a.sourceFailed(source)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// Login checks a password. On success it starts a session and returns its ID (for the
// cookie) and the principal; the principal is MFAPending when the user has a second
// factor, Enrolling when they need one and have none.
func (a *Authority) Login(ctx context.Context, name, password, source string) (string, *Principal, error) {
	if a.sourceLocked(source) {
		a.m.logins.WithLabelValues("locked").Inc()
		a.record(ctx, audit.Entry{Actor: clip(name), Source: source, Action: "auth.login_refused", Object: "user/" + clip(name),
			Details: map[string]string{"reason": "source address locked out"}})
		return "", nil, ErrLocked
	}
	u, err := a.user(ctx, a.db, name)
	if err != nil {
		verifyPassword(password, dummyHash)
		a.m.logins.WithLabelValues("bad_credentials").Inc()
		// Not the typed name: it may be a password typed into the wrong field. Its
		// digest still ties repeated attempts together.
		a.record(ctx, audit.Entry{Actor: "(unknown user)", AuthMethod: "password", Source: source, Action: "auth.login_failed",
			Details: map[string]string{"reason": "unknown user", "name_digest": audit.Digest(name)[:23]}})
		a.sourceFailed(source)
		return "", nil, errBadLogin
	}
	if a.now().Before(u.LockedUntil) {
		a.m.logins.WithLabelValues("locked").Inc()
		a.record(ctx, audit.Entry{Actor: u.Name, Source: source, Action: "auth.login_refused", Object: "user/" + u.Name,
			Details: map[string]string{"reason": "user locked out until " + ts(u.LockedUntil)}})
		return "", nil, ErrLocked
	}
	if !verifyPassword(password, u.password) || u.Disabled {
		a.m.logins.WithLabelValues("bad_credentials").Inc()
		why := "wrong password"
		if u.Disabled {
			why = "account disabled"
		}
		a.userFailed(ctx, u.Name, source, "auth.login_failed", why)
		return "", nil, errBadLogin
	}
	now := a.now()
	s := &session{user: u.Name, roles: u.Roles, created: now, lastSeen: now, source: source, method: "password"}
	switch {
	case u.MFA:
	case u.NeedsMFA():
		s.enrolling = true
	default:
		s.mfaDone = true
	}
	step := "password"
	if !s.mfaDone {
		step = "password; second factor pending"
	}
	_, err = a.audit.Apply(ctx, audit.Entry{Actor: u.Name, Role: joinRoles(u.Roles), AuthMethod: "password", Source: source,
		Action: "auth.login", Object: "user/" + u.Name, Details: map[string]string{"step": step}}, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET failures = 0, locked_until = '' WHERE name = ?`, u.Name)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	a.sourceOK(source)
	a.m.logins.WithLabelValues("ok").Inc()
	id := a.newSession(s)
	return id, s.principal(), nil
}

// sessionFor returns the live session of p.
func (a *Authority) sessionFor(p *Principal) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p == nil {
		return nil
	}
	return a.sessions[p.sessionHash]
}

// VerifyMFA checks a TOTP code (each time step is accepted once) or an unused recovery
// code for p's pending login and returns the session's new ID.
func (a *Authority) VerifyMFA(ctx context.Context, p *Principal, code string) (string, error) {
	s := a.sessionFor(p)
	if s == nil || !p.MFAPending {
		return "", badRequest("no login is waiting for a second factor")
	}
	u, err := a.user(ctx, a.db, s.user)
	if err != nil {
		return "", err
	}
	if a.now().Before(u.LockedUntil) {
		return "", ErrLocked
	}
	method := "password+totp"
	step := matchTOTP(u.secret, code, a.now())
	var ok bool
	_, err = a.audit.Apply(ctx, audit.Entry{Actor: u.Name, Role: joinRoles(u.Roles), AuthMethod: method, Source: p.Source,
		Action: "auth.mfa", Object: "user/" + u.Name}, func(tx *sql.Tx) error {
		if step > 0 {
			// Replay protection: the step must be newer than the last one used.
			res, err := tx.ExecContext(ctx, `UPDATE auth_users SET totp_last_step = ?, failures = 0, locked_until = '' WHERE name = ? AND totp_last_step < ?`, step, u.Name, step)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				ok = true
				return nil
			}
			return errReplay
		}
		res, err := tx.ExecContext(ctx, `UPDATE auth_recovery_codes SET used_at = ? WHERE user = ? AND hash = ? AND used_at = ''`, ts(a.now()), u.Name, hashSecret(code))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			ok, method = true, "password+recovery"
			_, err = tx.ExecContext(ctx, `UPDATE auth_users SET failures = 0, locked_until = '' WHERE name = ?`, u.Name)
			return err
		}
		return errBadCode
	})
	if !ok {
		a.m.logins.WithLabelValues("bad_code").Inc()
		why := "wrong code"
		if errors.Is(err, errReplay) {
			why = "code already used (replay)"
		}
		a.userFailed(ctx, u.Name, p.Source, "auth.mfa_failed", why)
		if errors.Is(err, errReplay) {
			return "", errReplay
		}
		return "", errBadCode
	}
	a.m.logins.WithLabelValues("mfa_ok").Inc()
	a.mu.Lock()
	s.mfaDone, s.method = true, method
	a.mu.Unlock()
	return a.rotate(s), nil
}

var (
	errBadCode = &httpError{401, "wrong code"}
	errReplay  = &httpError{401, "this code was used already; wait for the next one"}
)

// BeginEnroll makes a new TOTP secret for p's session and returns the key (its URL for
// a QR code and the secret to type in). The secret is kept only in the session until
// ConfirmEnroll.
func (a *Authority) BeginEnroll(p *Principal) (*otp.Key, error) {
	s := a.sessionFor(p)
	if s == nil {
		return nil, badRequest("enrolment needs a browser session")
	}
	key, err := newTOTPKey(a.policy.Issuer, s.user)
	if err != nil {
		return nil, fmt.Errorf("auth: totp key: %w", err)
	}
	a.mu.Lock()
	s.pendingSecret = key.Secret()
	a.mu.Unlock()
	return key, nil
}

// ConfirmEnroll checks a code against the pending secret, stores it, makes ten recovery
// codes (returned once) and returns the session's new ID.
func (a *Authority) ConfirmEnroll(ctx context.Context, p *Principal, code string) (string, []string, error) {
	s := a.sessionFor(p)
	if s == nil || s.pendingSecret == "" {
		return "", nil, badRequest("start enrolment first")
	}
	if !s.enrolling && !s.mfaDone {
		return "", nil, badRequest("finish logging in first")
	}
	step := matchTOTP(s.pendingSecret, code, a.now())
	if step == 0 {
		a.userFailed(ctx, s.user, p.Source, "auth.mfa_enrol_failed", "wrong code")
		return "", nil, errBadCode
	}
	codes, hashes := newRecoveryCodes(10)
	_, err := a.audit.Apply(ctx, p.Entry("auth.mfa_enrol", "user/"+s.user, nil), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE auth_users SET totp_secret = ?, totp_last_step = ? WHERE name = ?`, s.pendingSecret, step, s.user); err != nil {
			return err
		}
		return replaceRecoveryCodes(ctx, tx, s.user, hashes)
	})
	if err != nil {
		return "", nil, err
	}
	a.mu.Lock()
	s.pendingSecret, s.enrolling, s.mfaDone, s.method = "", false, true, "password+totp"
	a.mu.Unlock()
	return a.rotate(s), codes, nil
}

func replaceRecoveryCodes(ctx context.Context, tx *sql.Tx, user string, hashes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_recovery_codes WHERE user = ?`, user); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_recovery_codes(user, hash) VALUES(?, ?)`, user, h); err != nil {
			return err
		}
	}
	return nil
}

// NewRecoveryCodes replaces p's recovery codes and returns the new ones (shown once).
func (a *Authority) NewRecoveryCodes(ctx context.Context, p *Principal) ([]string, error) {
	codes, hashes := newRecoveryCodes(10)
	_, err := a.audit.Apply(ctx, p.Entry("auth.recovery_codes", "user/"+p.User, nil), func(tx *sql.Tx) error {
		return replaceRecoveryCodes(ctx, tx, p.User, hashes)
	})
	return codes, err
}

// Logout ends p's session.
func (a *Authority) Logout(ctx context.Context, p *Principal) {
	if p == nil || p.sessionHash == "" {
		return
	}
	a.dropSession(p.sessionHash)
	a.record(ctx, p.Entry("auth.logout", "user/"+p.User, nil))
}

// Setup creates the first admin with the one-time token. It works once, while no user
// exists.
func (a *Authority) Setup(ctx context.Context, token, name, password, source string) error {
	a.mu.Lock()
	want := a.setupToken
	a.mu.Unlock()
	if a.sourceLocked(source) {
		return ErrLocked
	}
	if want == "" {
		return forbidden("setup is done already; log in")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		a.sourceFailed(source)
		a.record(ctx, audit.Entry{Actor: "system:setup", Source: source, Action: "auth.setup_failed", Details: map[string]string{"reason": "wrong setup token"}})
		return forbidden("wrong setup token; it is printed in the log (journalctl -u patchgate)")
	}
	if err := a.CreateUser(ctx, nil, name, password, []Role{Admin}); err != nil {
		return err
	}
	a.mu.Lock()
	a.setupToken = ""
	a.mu.Unlock()
	a.log.Info("first-run setup done", "admin", name)
	return nil
}

// BreakGlass elevates p's session to role for d (at most the policy's maximum), with a
// reason. It is loudly recorded: an audit record, an error-level log line, a metric and
// a banner on every page while it lasts.
func (a *Authority) BreakGlass(ctx context.Context, p *Principal, role Role, reason string, d time.Duration) (time.Time, error) {
	s := a.sessionFor(p)
	if s == nil {
		return time.Time{}, badRequest("break-glass needs a browser session with MFA, not a token")
	}
	if len(reason) < 10 {
		return time.Time{}, badRequest("give a reason (at least 10 characters)")
	}
	if contains(s.roles, role) {
		return time.Time{}, badRequest("you hold %s already", role)
	}
	if role == Admin || role == Auditor || role == Viewer {
		return time.Time{}, badRequest("break-glass elevates to requester, approver or deployer only")
	}
	if d <= 0 || d > a.policy.BreakGlassMax {
		d = a.policy.BreakGlassMax
	}
	until := a.now().Add(d)
	e := p.Entry("breakglass.start", "user/"+p.User, map[string]string{"role": string(role), "reason": reason, "until": ts(until)})
	if err := a.record(ctx, e); err != nil {
		return time.Time{}, err
	}
	a.mu.Lock()
	s.elevated, s.elevatedUntil, s.elevateReason = role, until, reason
	a.mu.Unlock()
	a.m.breakGlass.Inc()
	a.log.Error("BREAK-GLASS elevation started", "user", p.User, "role", role, "until", until, "reason", reason)
	return until, nil
}

// EndBreakGlass ends p's elevation early.
func (a *Authority) EndBreakGlass(ctx context.Context, p *Principal) error {
	s := a.sessionFor(p)
	if s == nil || s.elevated == "" {
		return badRequest("no elevation to end")
	}
	if err := a.record(ctx, p.Entry("breakglass.end", "user/"+p.User, map[string]string{"role": string(s.elevated)})); err != nil {
		return err
	}
	a.mu.Lock()
	s.elevated, s.elevatedUntil, s.elevateReason = "", time.Time{}, ""
	a.mu.Unlock()
	a.log.Warn("break-glass elevation ended", "user", p.User)
	return nil
}

// Elevations lists the break-glass elevations in force, for the status page.
func (a *Authority) Elevations() []Elevation {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Elevation
	now := a.now()
	for _, s := range a.sessions {
		if s.elevated != "" && now.Before(s.elevatedUntil) {
			out = append(out, Elevation{User: s.user, Role: s.elevated, Until: s.elevatedUntil, Reason: s.elevateReason})
		}
	}
	return out
}

// Elevation is one break-glass elevation in force.
type Elevation struct {
	User   string    `json:"user"`
	Role   Role      `json:"role"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

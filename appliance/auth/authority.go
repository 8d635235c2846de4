package auth

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/httpapi"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Recorder is the audit trail as auth uses it (*audit.Log implements it).
type Recorder interface {
	Apply(ctx context.Context, e audit.Entry, fn func(*sql.Tx) error) (audit.Record, error)
}

// Renderer draws a page template (web.Pages implements it).
type Renderer = httpapi.Renderer

// Policy holds the tunables, from the auth config section.
type Policy struct {
	SessionIdle     time.Duration // a session unused this long ends (15m)
	SessionLifetime time.Duration // a session ends this long after login whatever its use (12h)
	LockoutAfter    int           // consecutive failures before a lockout (5)
	LockoutBase     time.Duration // first lockout; doubles with each further failure (1m)
	LockoutMax      time.Duration // longest lockout (1h)
	BreakGlassMax   time.Duration // longest break-glass elevation (1h)
	TokenLifetime   time.Duration // API tokens expire after this (90 days)
	LoopbackViewer  bool          // unauthenticated requests from loopback read the status page and metrics (dev only)
	SecureCookies   bool          // Secure cookies (the admin listener serves HTTPS)
	TrustedOrigins  []string      // origins allowed to make cross-origin requests, e.g. https://patchgate.example
	Issuer          string        // TOTP issuer shown in authenticator apps
}

// Options configure New.
type Options struct {
	Policy     Policy
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Audit      Recorder
	Pages      Renderer
}

// Authority is the appliance's users, sessions, tokens and exceptions. It is safe for
// concurrent use and starts no goroutines.
type Authority struct {
	db     *store.DB
	policy Policy
	clock  clock.Clock
	log    *slog.Logger
	audit  Recorder
	pages  Renderer
	m      *metrics
	argon  argonParams

	mu         sync.Mutex
	sessions   map[string]*session // by hash of the session ID
	sources    map[string]*failures
	setupToken string // the one-time first-run token; empty once used or when users exist
	usedSteps  map[string]int64
	appliance  applianceHolder
}

// New opens the auth tables (migrating them). When there is no user yet it makes the
// one-time setup token; SetupToken returns it for the caller to print.
func New(ctx context.Context, db *store.DB, opts Options) (*Authority, error) {
	if err := db.MigrateFS(ctx, "auth", migrationFiles, "migrations"); err != nil {
		return nil, err
	}
	if opts.Audit == nil {
		return nil, errors.New("auth: an audit trail is required")
	}
	defaults.Fill(&opts.Clock, &opts.Logger, nil)
	p := &opts.Policy
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.SessionIdle, 15*time.Minute)
	def(&p.SessionLifetime, 12*time.Hour)
	def(&p.LockoutBase, time.Minute)
	def(&p.LockoutMax, time.Hour)
	def(&p.BreakGlassMax, time.Hour)
	def(&p.TokenLifetime, 90*24*time.Hour)
	if p.LockoutAfter <= 0 {
		p.LockoutAfter = 5
	}
	if p.Issuer == "" {
		p.Issuer = "Patchgate"
	}
	a := &Authority{db: db, policy: *p, clock: opts.Clock, log: opts.Logger, audit: opts.Audit, pages: opts.Pages,
		argon: defaultArgon, sessions: map[string]*session{}, sources: map[string]*failures{}, usedSteps: map[string]int64{}}
	m, err := newMetrics(opts.Registerer, a)
	if err != nil {
		return nil, fmt.Errorf("auth: metrics: %w", err)
	}
	a.m = m
	n, err := a.countUsers(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		a.setupToken = randomString(20)
	}
	return a, nil
}

// SetupToken returns the one-time first-run token while no user exists, else "".
func (a *Authority) SetupToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.setupToken
}

func (a *Authority) now() time.Time { return a.clock.Now().UTC() }

const tf = time.RFC3339Nano

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(tf)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(tf, s)
	return t
}

// User is an account as shown to admins (no secrets).
type User struct {
	Name        string    `json:"name"`
	Roles       []Role    `json:"roles"`
	MFA         bool      `json:"mfa"`
	Disabled    bool      `json:"disabled"`
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`

	password string
	secret   string
	lastStep int64
}

// HasRole reports whether u holds r (the users page ticks its role checkboxes with it).
func (u User) HasRole(r Role) bool { return slices.Contains(u.Roles, r) }

// NeedsMFA reports whether any of the user's roles can change something.
func (u User) NeedsMFA() bool {
	for _, r := range u.Roles {
		if r.NeedsMFA() {
			return true
		}
	}
	return false
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

const userCols = `name, roles, password, totp_secret, totp_last_step, disabled, failures, locked_until, created_at, created_by`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var roles, locked, created string
	if err := s.Scan(&u.Name, &roles, &u.password, &u.secret, &u.lastStep, &u.Disabled, &u.Failures, &locked, &created, &u.CreatedBy); err != nil {
		return u, err
	}
	u.Roles, _ = ParseRoles(roles)
	u.MFA = u.secret != ""
	u.LockedUntil, u.CreatedAt = parseTS(locked), parseTS(created)
	return u, nil
}

// ErrNotFound is returned for a user, token or exception that does not exist.
var ErrNotFound = errors.New("not found")

func (a *Authority) user(ctx context.Context, q querier, name string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM auth_users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return u, err
}

// Users lists every account.
func (a *Authority) Users(ctx context.Context) ([]User, error) {
	users, err := store.Query(ctx, a.db, scanUser, `SELECT `+userCols+` FROM auth_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	return users, nil
}

func (a *Authority) countUsers(ctx context.Context) (int, error) {
	var n int
	if err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM auth_users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("auth: count users: %w", err)
	}
	return n, nil
}

// MFACoverage counts enabled users who need a second factor and those of them who have
// one enrolled; for the compliance report.
func (a *Authority) MFACoverage(ctx context.Context) (needing, enrolled int, err error) {
	users, err := a.Users(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, u := range users {
		if u.Disabled || !u.NeedsMFA() {
			continue
		}
		needing++
		if u.MFA {
			enrolled++
		}
	}
	return needing, enrolled, nil
}

var nameRE = func(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '@') {
			return false
		}
	}
	return true
}

// CreateUser adds an account. by is the principal doing it (nil only for first-run
// setup, which is recorded as system:setup).
func (a *Authority) CreateUser(ctx context.Context, by *Principal, name, password string, roles []Role) error {
	if !nameRE(name) {
		return badRequest("user name must be 2-64 of a-z 0-9 . - _ @, got %q", name)
	}
	if err := checkPassword(password); err != nil {
		return badRequest("%v", err)
	}
	if len(roles) == 0 {
		return badRequest("at least one role is needed")
	}
	hash := hashPassword(password, a.argon)
	e := audit.Entry{Actor: "system:setup", Action: "user.create", Object: "user/" + name,
		After: audit.Digest(map[string]any{"name": name, "roles": roles}), Details: map[string]string{"roles": joinRoles(roles)}}
	if by != nil {
		e = by.Entry("user.create", "user/"+name, e.Details)
		e.After = audit.Digest(map[string]any{"name": name, "roles": roles})
	}
	_, err := a.audit.Apply(ctx, e, func(tx *sql.Tx) error {
		var n int
		tx.QueryRowContext(ctx, `SELECT count(*) FROM auth_users WHERE name = ?`, name).Scan(&n)
		if n > 0 {
			return conflict("user %q exists already", name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO auth_users(name, roles, password, created_at, created_by) VALUES(?,?,?,?,?)`,
			name, joinRoles(roles), hash, ts(a.now()), e.Actor)
		return err
	})
	return err
}

// SetRoles replaces a user's roles.
func (a *Authority) SetRoles(ctx context.Context, by *Principal, name string, roles []Role) error {
	if len(roles) == 0 {
		return badRequest("at least one role is needed")
	}
	return a.changeUser(ctx, by, name, "user.roles", map[string]string{"roles": joinRoles(roles)}, func(tx *sql.Tx, u User) error {
		if name == by.User && !contains(roles, Admin) && contains(u.Roles, Admin) {
			return conflict("you cannot take the admin role from yourself")
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET roles = ? WHERE name = ?`, joinRoles(roles), name)
		if err == nil {
			a.dropSessions(name)
		}
		return err
	})
}

// SetDisabled disables or re-enables a user; disabling ends their sessions.
func (a *Authority) SetDisabled(ctx context.Context, by *Principal, name string, disabled bool) error {
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	return a.changeUser(ctx, by, name, action, nil, func(tx *sql.Tx, u User) error {
		if name == by.User && disabled {
			return conflict("you cannot disable yourself")
		}
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET disabled = ? WHERE name = ?`, disabled, name)
		if err == nil && disabled {
			a.dropSessions(name)
		}
		return err
	})
}

// ResetMFA removes a user's second factor and recovery codes: they enrol again at their
// next login.
func (a *Authority) ResetMFA(ctx context.Context, by *Principal, name string) error {
	return a.changeUser(ctx, by, name, "user.mfa_reset", nil, func(tx *sql.Tx, u User) error {
		if _, err := tx.ExecContext(ctx, `UPDATE auth_users SET totp_secret = '', totp_last_step = 0 WHERE name = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM auth_recovery_codes WHERE user = ?`, name)
		a.dropSessions(name)
		return err
	})
}

// Unlock clears a user's failure count and lockout.
func (a *Authority) Unlock(ctx context.Context, by *Principal, name string) error {
	return a.changeUser(ctx, by, name, "user.unlock", nil, func(tx *sql.Tx, u User) error {
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET failures = 0, locked_until = '' WHERE name = ?`, name)
		return err
	})
}

// SetPassword changes a user's password (their own, or an admin's reset).
func (a *Authority) SetPassword(ctx context.Context, by *Principal, name, password string) error {
	if err := checkPassword(password); err != nil {
		return badRequest("%v", err)
	}
	hash := hashPassword(password, a.argon)
	return a.changeUser(ctx, by, name, "user.password", nil, func(tx *sql.Tx, u User) error {
		_, err := tx.ExecContext(ctx, `UPDATE auth_users SET password = ? WHERE name = ?`, hash, name)
		return err
	})
}

func (a *Authority) changeUser(ctx context.Context, by *Principal, name, action string, details map[string]string, fn func(*sql.Tx, User) error) error {
	e := by.Entry(action, "user/"+name, details)
	_, err := a.audit.Apply(ctx, e, func(tx *sql.Tx) error {
		u, err := a.user(ctx, tx, name)
		if err != nil {
			return err
		}
		return fn(tx, u)
	})
	return err
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// record writes an audit entry with no other change.
func (a *Authority) record(ctx context.Context, e audit.Entry) error {
	_, err := a.audit.Apply(ctx, e, nil)
	return err
}

// httpError is an error with the status code the API answers with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(f string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(f, args...)}
}
func conflict(f string, args ...any) error {
	return &httpError{http.StatusConflict, fmt.Sprintf(f, args...)}
}
func forbidden(f string, args ...any) error {
	return &httpError{http.StatusForbidden, fmt.Sprintf(f, args...)}
}

// Refuse returns an error the auth pages answer with code and msg (for adapters that
// translate another subsystem's refusals: 403 for separation of duties, 409 for a
// wrong state, 404, 400).
func Refuse(code int, msg string) error { return &httpError{code, msg} }

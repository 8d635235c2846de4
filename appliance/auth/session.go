package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
)

// session is one browser login, kept in memory (a restart logs everybody out).
type session struct {
	hash     string
	user     string
	roles    []Role
	created  time.Time
	lastSeen time.Time
	source   string
	method   string // password, then password+totp or password+recovery
	// mfaDone is true once the second factor was given (or the user needs none and has
	// none). enrolling: the user must enrol a second factor before anything else.
	mfaDone       bool
	enrolling     bool
	pendingSecret string
	elevated      Role
	elevatedUntil time.Time
	elevateReason string
}

// Principal is who makes a request: a logged-in user, an API token or (dev only) an
// anonymous loopback viewer. Guard puts it in the request's context.
type Principal struct {
	User   string `json:"user"`
	Roles  []Role `json:"roles"`
	Method string `json:"method"` // password, password+totp, password+recovery, token, loopback
	Source string `json:"source"`
	// Elevated is a break-glass role held until ElevatedUntil.
	Elevated      Role      `json:"elevated,omitempty"`
	ElevatedUntil time.Time `json:"elevated_until,omitzero"`
	MFAPending    bool      `json:"mfa_pending,omitempty"`
	Enrolling     bool      `json:"enrolling,omitempty"`

	sessionHash string
	tokenID     string
}

// Can reports whether the principal holds perm now.
func (p *Principal) Can(perm Permission) bool {
	if p == nil {
		return perm == Public
	}
	if p.Method == methodLoopback {
		// The anonymous loopback viewer (auth.loopback_viewer) reads the status page and
		// the metrics, nothing else: no session routes, no inventory, no own account.
		return perm == Public || perm == StatusRead
	}
	switch perm {
	case Public, Session:
		return true
	}
	if p.MFAPending || p.Enrolling {
		return false
	}
	for _, r := range p.allRoles() {
		if r.Grants(perm) {
			return true
		}
	}
	return false
}

func (p *Principal) allRoles() []Role {
	if p.Elevated != "" {
		return append(append([]Role{}, p.Roles...), p.Elevated)
	}
	return p.Roles
}

// Has reports whether the principal holds role r (including by break-glass).
func (p *Principal) Has(r Role) bool { return p != nil && contains(p.allRoles(), r) }

// RoleString is the roles for an audit record; a break-glass role is marked.
func (p *Principal) RoleString() string {
	s := joinRoles(p.Roles)
	if p.Elevated != "" {
		s += "+" + string(p.Elevated) + "(break-glass)"
	}
	return s
}

// Entry starts an audit entry made by the principal.
func (p *Principal) Entry(action, object string, details map[string]string) audit.Entry {
	if p == nil {
		return audit.Entry{Actor: "system", Action: action, Object: object, Details: details}
	}
	return audit.Entry{Actor: p.User, Role: p.RoleString(), AuthMethod: p.Method, Source: p.Source, Action: action, Object: object, Details: details}
}

// methodLoopback is the Method of the anonymous loopback viewer.
const methodLoopback = "loopback"

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal Guard put in ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Actor returns the name of whoever makes r, for APIs that record who did what (the
// rollout API takes this function). It fails for an anonymous request.
func Actor(r *http.Request) (string, error) {
	p := FromContext(r.Context())
	if p == nil || p.Method == methodLoopback {
		return "", fmt.Errorf("auth: request is not authenticated")
	}
	return p.User, nil
}

func (a *Authority) cookieName() string {
	if a.policy.SecureCookies {
		return "__Host-pg_session"
	}
	return "pg_session"
}

func (a *Authority) setCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: a.cookieName(), Value: id, Path: "/", HttpOnly: true,
		Secure: a.policy.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: int(a.policy.SessionLifetime / time.Second)})
}

func (a *Authority) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: a.cookieName(), Value: "", Path: "/", HttpOnly: true,
		Secure: a.policy.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// newSession stores s under a fresh random ID and returns the ID (for the cookie).
func (a *Authority) newSession(s *session) string {
	id := randomString(32)
	s.hash = hashSecret(id)
	now := a.now()
	a.mu.Lock()
	for h, old := range a.sessions { // drop the expired ones nobody came back to
		if now.Sub(old.lastSeen) >= a.policy.SessionIdle || now.Sub(old.created) >= a.policy.SessionLifetime {
			delete(a.sessions, h)
		}
	}
	a.sessions[s.hash] = s
	a.mu.Unlock()
	return id
}

// rotate gives the session a new ID, dropping the old one (after MFA, after elevation).
func (a *Authority) rotate(s *session) string {
	a.mu.Lock()
	delete(a.sessions, s.hash)
	a.mu.Unlock()
	return a.newSession(s)
}

func (a *Authority) dropSession(hash string) {
	a.mu.Lock()
	delete(a.sessions, hash)
	a.mu.Unlock()
}

// dropSessions ends every session of user (roles changed, disabled, MFA reset).
func (a *Authority) dropSessions(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, s := range a.sessions {
		if s.user == user {
			delete(a.sessions, h)
		}
	}
}

// lookupSession finds r's session, ending it when idle or too old.
func (a *Authority) lookupSession(ctx context.Context, r *http.Request) *session {
	c, err := r.Cookie(a.cookieName())
	if err != nil || c.Value == "" {
		return nil
	}
	h := hashSecret(c.Value)
	now := a.now()
	a.mu.Lock()
	s := a.sessions[h]
	if s == nil {
		a.mu.Unlock()
		return nil
	}
	if now.Sub(s.lastSeen) >= a.policy.SessionIdle || now.Sub(s.created) >= a.policy.SessionLifetime {
		delete(a.sessions, h)
		a.mu.Unlock()
		return nil
	}
	s.lastSeen = now
	var expired *session
	if s.elevated != "" && !now.Before(s.elevatedUntil) {
		cp := *s
		expired = &cp
		s.elevated, s.elevatedUntil, s.elevateReason = "", time.Time{}, ""
	}
	cp := *s
	a.mu.Unlock()
	if expired != nil {
		a.log.Warn("break-glass elevation ended", "user", s.user, "role", expired.elevated)
		a.record(ctx, audit.Entry{Actor: "system:auth", Action: "breakglass.expired", Object: "user/" + s.user,
			Details: map[string]string{"role": string(expired.elevated), "reason": expired.elevateReason}})
	}
	return &cp
}

func (s *session) principal() *Principal {
	return &Principal{User: s.user, Roles: s.roles, Method: s.method, Source: s.source, Elevated: s.elevated,
		ElevatedUntil: s.elevatedUntil, MFAPending: !s.mfaDone && !s.enrolling, Enrolling: s.enrolling, sessionHash: s.hash}
}

// sourceOf is the remote address of r (the admin listener is not behind a proxy).
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func isLoopback(r *http.Request) bool {
	ip := net.ParseIP(sourceOf(r))
	return ip != nil && ip.IsLoopback()
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Guard checks every request to the admin mux against the route table before the mux
// sees it. It is an http.Handler, safe for concurrent use.
type Guard struct {
	a      *Authority
	mux    *http.ServeMux
	routes Routes
	cop    *http.CrossOriginProtection
}

// Guard returns the handler to serve instead of mux. routes must name every pattern
// registered on mux (also those registered later; they are looked up per request).
func (a *Authority) Guard(mux *http.ServeMux, routes Routes) (*Guard, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range a.policy.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("auth: trusted origin %q: %w", o, err)
		}
	}
	return &Guard{a: a, mux: mux, routes: routes, cop: cop}, nil
}

// Principal identifies whoever makes r: an API token, a session cookie or, when allowed
// (dev), an anonymous loopback viewer. It returns nil for nobody.
func (a *Authority) Principal(r *http.Request) *Principal {
	if tok := bearer(r); tok != "" {
		p, err := a.tokenPrincipal(r.Context(), tok, sourceOf(r))
		if err != nil {
			return nil
		}
		return p
	}
	if s := a.lookupSession(r.Context(), r); s != nil {
		return s.principal()
	}
	if a.policy.LoopbackViewer && isLoopback(r) {
		return &Principal{User: "anonymous@loopback", Roles: []Role{Viewer}, Method: methodLoopback, Source: sourceOf(r)}
	}
	return nil
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := g.mux.Handler(r)
	perm, ok := permissionFor(g.routes, pattern, r)
	if pattern == "" {
		// No route matches: let the mux answer 404 or 405; nothing runs.
		g.mux.ServeHTTP(w, r)
		return
	}
	if !ok {
		g.a.m.denied.WithLabelValues("unknown_route").Inc()
		g.a.log.Error("auth: route or action has no entry in the permission table; refused", "pattern", pattern, "path", r.URL.Path)
		g.deny(w, r, http.StatusForbidden, "this route has no permission entry; refused")
		return
	}
	if err := g.cop.Check(r); err != nil {
		g.a.m.denied.WithLabelValues("cross_origin").Inc()
		g.deny(w, r, http.StatusForbidden, "cross-origin request refused")
		return
	}
	// No page of the admin UI runs a script or loads anything from elsewhere.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	if r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	if perm == Public {
		g.mux.ServeHTTP(w, r)
		return
	}
	p := g.a.Principal(r)
	switch {
	case p == nil, p.Method == methodLoopback && !p.Can(perm):
		// Nobody, or the anonymous loopback viewer beyond the status page: log in.
		g.a.m.denied.WithLabelValues("unauthenticated").Inc()
		if r.Method == http.MethodGet && !wantsJSON(r) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		g.deny(w, r, http.StatusUnauthorized, "log in first (or send an API token: Authorization: Bearer ...)")
		return
	case (p.MFAPending || p.Enrolling) && perm != Session:
		g.a.m.denied.WithLabelValues("mfa_required").Inc()
		if r.Method == http.MethodGet && !wantsJSON(r) {
			to := "/login/mfa"
			if p.Enrolling {
				to = "/account/mfa"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		g.deny(w, r, http.StatusForbidden, "finish logging in with your second factor first")
		return
	case !p.Can(perm):
		g.a.m.denied.WithLabelValues("forbidden").Inc()
		g.deny(w, r, http.StatusForbidden, fmt.Sprintf("forbidden: this needs the %s permission, which your roles (%s) do not grant", perm, p.RoleString()))
		return
	}
	g.mux.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
}

// deny answers with a JSON error for API clients and a short page for browsers.
func (g *Guard) deny(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("X-Patchgate-Denied", "auth")
	WriteError(w, r, code, msg)
}

func wantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json") {
		return true
	}
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
}

// Decide reports whether the guard would let p through to r's route: the route is in
// the table and p holds its permission. For tests and tools listing access.
func (g *Guard) Decide(r *http.Request, p *Principal) bool {
	_, pattern := g.mux.Handler(r)
	perm, ok := permissionFor(g.routes, pattern, r)
	return pattern != "" && ok && p.Can(perm)
}

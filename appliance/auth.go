package appliance

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/logring"
	"github.com/patchgate/patchgate/appliance/web"
)

// buildAuth guards the admin listener: users, sessions, MFA, tokens and exceptions,
// every admin route checked against auth.AdminRoutes, and HTTPS (self-signed at first
// start, or the admin's own certificate; plain HTTP only on loopback, see
// auth.AdminTLS). With no user yet, the one-time setup token is logged.
func (s *System) buildAuth(ctx context.Context) error {
	pages, err := web.NewPages(s, s.log)
	if err != nil {
		return err
	}
	c := s.cfg.Auth
	policy := c.Policy()
	secure := policy.SecureCookies
	a, err := auth.New(ctx, s.db, auth.Options{
		Policy:     policy,
		Clock:      s.clock,
		Logger:     s.log.With("svc", "auth"),
		Registerer: s.registry,
		Audit:      s.audit,
		Pages:      pages,
	})
	if err != nil {
		return err
	}
	s.auth = a
	mux := s.admin.mux
	a.Register(mux)
	audit.NewHandler(s.audit, pages, auditEntry).Register(mux)
	guard, err := a.Guard(mux, auth.AdminRoutes)
	if err != nil {
		return err
	}
	s.admin.srv.Handler = guard
	scheme := "http"
	if secure {
		tcfg, fp, err := auth.AdminCertificate(s.cfg.State.Path("tls"), c.TLS.CertFile, c.TLS.KeyFile,
			append([]string{hostOf(s.admin.Addr())}, c.TLS.Hosts...), s.clock.Now())
		if err != nil {
			return err
		}
		s.admin.srv.TLSConfig = tcfg
		s.admin.ln = tls.NewListener(s.admin.ln, tcfg)
		s.log.Info("admin listener serves HTTPS; compare this fingerprint with the browser's", "certificate_sha256", fp, "mode", c.TLS.Mode)
		scheme = "https"
	}
	if tok := a.SetupToken(); tok != "" {
		// The one secret ever logged: it creates the first admin once and is useless after.
		// Private: to the journal only, never to the status page's recent log.
		s.log.Warn("first-run setup: no admin exists yet; open the setup page and enter this one-time token",
			"url", fmt.Sprintf("%s://%s/setup", scheme, s.admin.Addr()), logring.Private("setup_token", tok))
	}
	s.AddPanel(authPanel{a})
	return nil
}

func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			h := addr[:i]
			if len(h) > 1 && h[0] == '[' {
				h = h[1 : len(h)-1]
			}
			return h
		}
	}
	return addr
}

type authPanel struct{ a *auth.Authority }

// AuthStatus is the access panel: break-glass elevations in force (loudly), whether the
// first-run setup is pending, and MFA coverage.
type AuthStatus struct {
	SetupPending bool             `json:"setup_pending"`
	Elevations   []auth.Elevation `json:"elevations"`
	MFANeeded    int              `json:"mfa_needed"`
	MFAEnrolled  int              `json:"mfa_enrolled"`
}

func (p authPanel) Panel(ctx context.Context) web.Panel {
	st := AuthStatus{SetupPending: p.a.SetupToken() != "", Elevations: p.a.Elevations()}
	st.MFANeeded, st.MFAEnrolled, _ = p.a.MFACoverage(ctx)
	return web.Panel{ID: "auth", Title: "Access", Data: st}
}

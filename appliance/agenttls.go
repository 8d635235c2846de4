package appliance

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/vendorhost"
)

// agentTLS is the agents' HTTPS listener (rollout.agent_tls.listen): the distribution
// listener's handler (the agent API and /repos/) over TLS, for agents on the road.
type agentTLS struct {
	svc         *httpService
	fingerprint string
}

// buildAgentTLS makes the agent CA (STATE/agent-ca: the site CA's code, its own key,
// so devices that trust the site CA for vendor names trust no agent and no agent
// certificate serves a name), the listener's certificate (cert_file/key_file, else
// self-signed in STATE/agent-tls, made once and kept: agents pin it) and the listener,
// and hands the CA to the rollout engine. Client certificates are requested in the
// handshake and checked by the engine on its clock. No segment filter: agents come
// from anywhere (VPN, home) and are authenticated by credential and certificate.
// Socket activation is not offered for this listener.
func (s *System) buildAgentTLS(context.Context) error {
	c := s.cfg.Rollout.AgentTLS
	if c.Listen == "" || s.rollout == nil {
		return nil
	}
	now := s.clock.Now()
	ca, err := vendorhost.LoadCA(s.cfg.State.Path("agent-ca"), now)
	if err != nil {
		return err
	}
	tcfg, fp, err := auth.AdminCertificate(s.cfg.State.Path("agent-tls"), c.CertFile, c.KeyFile,
		append([]string{hostOf(c.Listen)}, c.Hosts...), now)
	if err != nil {
		return err
	}
	tcfg.ClientAuth = tls.RequestClientCert
	svc, err := newHTTPService("agent", c.Listen, nil, s.log)
	if err != nil {
		return err
	}
	svc.srv.Handler = s.dist.srv.Handler
	svc.srv.TLSConfig = tcfg
	svc.srv.ReadTimeout = 0
	svc.srv.IdleTimeout = 2 * time.Minute
	svc.ln = tls.NewListener(svc.ln, tcfg)
	s.closers = append(s.closers, svc.ln.Close)
	s.rollout.SetClientCA(rollout.ClientCAConfig{CA: ca, Require: c.RequireClientCert, Validity: c.CertValidity.D()})
	s.agentTLS = &agentTLS{svc: svc, fingerprint: fp}
	s.log.Info("agent listener serves HTTPS with client certificates; give agents this fingerprint as appliance_fingerprint",
		"addr", svc.Addr(), "certificate_sha256", fp, "require_client_cert", c.RequireClientCert)
	return nil
}

// AgentTLSAddr is the agent listener's bound address ("" without one).
func (s *System) AgentTLSAddr() string {
	if s.agentTLS == nil {
		return ""
	}
	return s.agentTLS.svc.Addr()
}

// AgentTLSFingerprint is the agent listener certificate's SHA-256 fingerprint, what
// agents pin ("" without a listener).
func (s *System) AgentTLSFingerprint() string {
	if s.agentTLS == nil {
		return ""
	}
	return s.agentTLS.fingerprint
}

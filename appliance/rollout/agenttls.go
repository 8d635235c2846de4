package rollout

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/httpapi"
	"github.com/patchgate/patchgate/conf"
)

// Agents on the road (at home, over a VPN) talk to the appliance's agent listener:
// HTTPS with the appliance's certificate (which each agent pins at enrolment) and a
// client certificate per agent. The agent sends a CSR at enrolment; the agent CA signs
// it with the agent's id as the subject. Every request then carries both the Bearer
// credential and the certificate; they must name the same agent. Revoking an agent
// refuses its next request (the credential is looked up on each one), whatever its
// certificate. Certificates are checked here, on the engine's clock, not in the TLS
// handshake, so an expired one gets a clear 401 and can still be renewed.

// DefaultClientCertValidity is how long an agent's client certificate lives.
const DefaultClientCertValidity = 30 * 24 * time.Hour

// AgentTLSSection is rollout.agent_tls: the agents' HTTPS listener.
type AgentTLSSection struct {
	// Listen is the address (e.g. ":8443"); empty: no agent listener.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are the listener's certificate; empty: a self-signed one in
	// STATE/agent-tls, whose fingerprint is logged for the agents' appliance_fingerprint.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Hosts are extra names or addresses for the self-signed certificate.
	Hosts []string `yaml:"hosts"`
	// RequireClientCert refuses agent API requests over it without a valid client
	// certificate (enrolment excepted).
	RequireClientCert bool `yaml:"require_client_cert"`
	// CertValidity is the client certificates' life (default 720h).
	CertValidity conf.Duration `yaml:"cert_validity"`
}

func (s AgentTLSSection) validate(key string, ps *conf.Problems) {
	if (s.CertFile == "") != (s.KeyFile == "") {
		ps.Addf(key+".cert_file", "cert_file and key_file go together")
	}
	if d := s.CertValidity.D(); d < 24*time.Hour || d > 365*24*time.Hour {
		ps.Addf(key+".cert_validity", "must be between 24h and 8760h, got %s", d)
	}
}

// ClientCA signs agents' client certificates and vouches for them (vendorhost.CA,
// loaded from its own directory by the wiring).
type ClientCA interface {
	SignClient(csrPEM []byte, cn string, now time.Time, validity time.Duration) ([]byte, error)
	Pool() *x509.CertPool
}

// ClientCAConfig is what SetClientCA installs.
type ClientCAConfig struct {
	CA       ClientCA
	Require  bool          // refuse agent requests over TLS without a valid certificate
	Validity time.Duration // 0: DefaultClientCertValidity
}

// SetClientCA makes the engine issue and check client certificates.
func (e *Engine) SetClientCA(c ClientCAConfig) {
	if c.Validity <= 0 {
		c.Validity = DefaultClientCertValidity
	}
	e.clientCA.Store(&c)
}

func (e *Engine) signClient(csr string, ag *Agent) (string, error) {
	c := e.clientCA.Load()
	if c == nil {
		return "", fmt.Errorf("%w: this appliance issues no client certificates", ErrInvalid)
	}
	b, err := c.CA.SignClient([]byte(csr), ag.ID, e.clock.Now(), c.Validity)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return string(b), nil
}

// peerCert is the client certificate of a TLS connection, nil when there is none.
func peerCert(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// checkClientCert refuses a request whose client certificate (cs: the request's TLS
// connection, nil over plain http) the agent CA did not sign, has expired (unless
// expiredOK) or names another agent; and, when required, a TLS request without one.
// The agent API and the serving gate (a child appliance fetching targets over mTLS)
// both check with it.
func (e *Engine) checkClientCert(cs *tls.ConnectionState, ag *Agent, expiredOK bool) error {
	c := e.clientCA.Load()
	cert := peerCert(cs)
	switch {
	case c == nil || cs == nil:
		return nil
	case cert == nil && c.Require:
		return fmt.Errorf("%w: a client certificate is required on this listener (enrol again to get one)", ErrUnauthenticated)
	case cert == nil:
		return nil
	}
	now := e.clock.Now()
	at := now
	if expiredOK && now.After(cert.NotAfter) {
		at = cert.NotAfter.Add(-time.Second)
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: c.CA.Pool(), Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	switch {
	case err != nil && now.After(cert.NotAfter):
		return fmt.Errorf("%w: the client certificate expired at %s; renew it (POST /agent/v1/certificate)", ErrUnauthenticated, cert.NotAfter.UTC().Format(time.RFC3339))
	case err != nil:
		return fmt.Errorf("%w: client certificate: %v", ErrUnauthenticated, err)
	case cert.Subject.CommonName != ag.ID:
		return fmt.Errorf("%w: the client certificate belongs to another agent", ErrUnauthenticated)
	}
	return nil
}

// renewDue says whether the request's client certificate is past two thirds of its
// life on the engine's clock.
func (e *Engine) renewDue(r *http.Request) bool {
	cert := peerCert(r.TLS)
	if cert == nil || e.clientCA.Load() == nil {
		return false
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	return !e.clock.Now().Before(cert.NotBefore.Add(life * 2 / 3))
}

func (e *Engine) handleRenew(w http.ResponseWriter, r *http.Request, ag *Agent) {
	var req agentapi.RenewRequest
	if err := decode(w, r, &req); err != nil {
		failDecode(w, e.log, err)
		return
	}
	if r.TLS == nil {
		fail(w, e.log, fmt.Errorf("%w: client certificates are issued over the agent TLS listener only", ErrInvalid), 0)
		return
	}
	cert, err := e.signClient(req.CSR, ag)
	if err != nil {
		fail(w, e.log, fmt.Errorf("rollout: renew certificate: %w", err), 0)
		return
	}
	e.log.Info("rollout: agent client certificate issued", "agent", ag.ID)
	httpapi.WriteJSON(w, http.StatusOK, agentapi.RenewResponse{ClientCert: cert})
}

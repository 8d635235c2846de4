package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/clock"
)

// road is the stand-in appliance's TLS side: its server certificate (swappable), the
// agent CA that signs CSRs, whether a client certificate is required, and whether
// check-ins ask for a renewal.
type road struct {
	t      *testing.T
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPool *x509.CertPool

	mu            sync.Mutex
	server        tls.Certificate
	requireClient bool
	renew         bool
	signed        []string // agent ids certificates were issued to
	clientCNs     []string // the client certificate's CN on each authenticated request
}

func selfSigned(t *testing.T, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, pub any) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if pub == nil {
		pub = &key.PublicKey
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, BasicConstraintsValid: true, IsCA: isCA,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func serverCert(t *testing.T) tls.Certificate {
	c, key := selfSigned(t, "patchgate appliance", false, nil, nil, nil)
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

// newRoadEnv is newEnv served over HTTPS with client certificates; the agent is given
// the server certificate's fingerprint, as an admin would from the appliance's log.
func newRoadEnv(t *testing.T, data []byte, opts ...func(*agent.Options)) *env {
	t.Helper()
	return newRoadEnvOn(t, data, nil, opts...)
}

// newRoadEnvOn is newRoadEnv whose TCP listener wrap wraps (nil: none) underneath TLS,
// so a test can slow down or cut the connections as a VPN would.
func newRoadEnvOn(t *testing.T, data []byte, wrap func(net.Listener) net.Listener, opts ...func(*agent.Options)) *env {
	t.Helper()
	e := newEnv(t, data)
	ca, caKey := selfSigned(t, "agent CA", true, nil, nil, nil)
	rd := &road{t: t, ca: ca, caKey: caKey, caPool: x509.NewCertPool(), server: serverCert(t)}
	rd.caPool.AddCert(ca)
	e.app.road = rd
	e.app.srv.Close()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(e.app.serve))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{rd.server},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			rd.mu.Lock()
			defer rd.mu.Unlock()
			return &tls.Config{Certificates: []tls.Certificate{rd.server}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: rd.caPool}, nil
		},
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.app.srv = srv
	e.cfg.Appliance = srv.URL
	e.cfg.ApplianceFingerprint = agentapi.Fingerprint(rd.server.Leaf.Raw)
	e.startWith(t, opts...)
	return e
}

// sign issues a client certificate for a CSR; "" when there is no CA or no CSR.
func (r *road) sign(csrPEM, id string) string {
	if r == nil || csrPEM == "" {
		return ""
	}
	b, _ := pem.Decode([]byte(csrPEM))
	if b == nil {
		r.t.Error("CSR is not PEM")
		return ""
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		r.t.Errorf("bad CSR: %v", err)
		return ""
	}
	c, _ := selfSigned(r.t, id, false, r.ca, r.caKey, csr.PublicKey)
	r.mu.Lock()
	r.signed = append(r.signed, id)
	r.mu.Unlock()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// clientOK checks the client certificate of an authenticated request: its CN must
// be the credential's agent when one is required.
func (r *road) clientOK(req *http.Request, id string) bool {
	if r == nil {
		return true
	}
	cn := ""
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
		cn = req.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clientCNs = append(r.clientCNs, cn)
	return !r.requireClient || cn == id
}

func (r *road) renewDue() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	due := r.renew
	r.renew = false
	return due
}

func (r *road) snapshot() (signed, cns []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.signed...), append([]string(nil), r.clientCNs...)
}

// TestAgentOverHTTPSWithClientCertificate: enrolment pins the appliance's certificate
// and gets a client certificate; every later request presents it (the appliance
// requires it), a release installs, and a renewal the appliance asks for replaces it.
func TestAgentOverHTTPSWithClientCertificate(t *testing.T) {
	data := []byte("a package for a laptop at home")
	e := newRoadEnv(t, data)
	e.app.road.requireClient = true
	e.app.setOffers(offer(61, "pkgs/tool_1.1.deb", true, true))
	e.cycle(t)
	if _, outcomes, _ := e.app.snapshot(); len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomeSucceeded {
		t.Fatalf("outcomes = %+v, want one success over mTLS", outcomes)
	}
	signed, cns := e.app.road.snapshot()
	if len(signed) != 1 || signed[0] != "ag-1" {
		t.Errorf("certificates issued to %q, want one to ag-1", signed)
	}
	for i, cn := range cns {
		if cn != "ag-1" {
			t.Errorf("authenticated request %d presented client certificate %q, want ag-1", i, cn)
		}
	}
	pin, err := os.ReadFile(filepath.Join(e.cfg.StateDir, "appliance.pin"))
	if err != nil || !strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(string(pin)), ":", ""), strings.ReplaceAll(e.cfg.ApplianceFingerprint, ":", "")) {
		t.Errorf("appliance.pin = %q, %v; want the appliance's fingerprint", pin, err)
	}
	if fi, err := os.Stat(filepath.Join(e.cfg.StateDir, "client.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client.key: %v %v, want mode 0600", fi, err)
	}
	old, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "client.crt"))
	e.app.road.renew = true
	e.cycle(t)
	now, _ := os.ReadFile(filepath.Join(e.cfg.StateDir, "client.crt"))
	if signed, _ := e.app.road.snapshot(); len(signed) != 2 || string(old) == string(now) {
		t.Errorf("after a renewal request: %d certificates issued, certificate changed %v; want 2, true", len(signed), string(old) != string(now))
	}
	// A restarted agent uses the kept pin and certificate.
	e.start(t)
	e.cycle(t)
	if _, cns := e.app.road.snapshot(); cns[len(cns)-1] != "ag-1" {
		t.Errorf("restarted agent presented %q", cns[len(cns)-1])
	}
}

// TestAgentRefusesAnotherApplianceCertificate: a certificate other than the pinned
// one (replaced on the appliance, or a man in the middle) is refused with a clear
// error, with no fallback; so is a wrong fingerprint at enrolment and, without one,
// a certificate no CA vouches for.
func TestAgentRefusesAnotherApplianceCertificate(t *testing.T) {
	e := newRoadEnv(t, []byte("x"))
	e.cycle(t) // enrolled and pinned
	e.app.road.mu.Lock()
	e.app.road.server = serverCert(t)
	e.app.road.mu.Unlock()
	e.app.srv.CloseClientConnections() // the appliance restarted with it
	e.app.mu.Lock()
	checkinsBefore := len(e.app.checkins)
	e.app.mu.Unlock()
	_, err := e.agent.Cycle(context.Background())
	if errors.Is(err, io.EOF) {
		// The agent's pooled connection met the restart first (the server closed it
		// while it was idle); its next cycle dials anew, as it would in the field.
		_, err = e.agent.Cycle(context.Background())
	}
	if !errors.Is(err, agent.ErrPinMismatch) || !strings.Contains(err.Error(), "remove ") {
		t.Fatalf("Cycle with a changed certificate: %v, want ErrPinMismatch saying what to do", err)
	}
	e.app.mu.Lock()
	defer e.app.mu.Unlock()
	if len(e.app.checkins) != checkinsBefore {
		t.Error("the agent checked in over an unpinned certificate")
	}
	if e.agent.ID() == "" {
		t.Error("the agent dropped its enrolment over a changed certificate")
	}

	wrong := newRoadEnv(t, []byte("x"))
	wrong.cfg.ApplianceFingerprint = strings.Repeat("ab", 32)
	wrong.start(t)
	if _, err := wrong.agent.Cycle(context.Background()); !errors.Is(err, agent.ErrPinMismatch) {
		t.Errorf("enrolment with a wrong fingerprint: %v, want ErrPinMismatch", err)
	}
	none := newRoadEnv(t, []byte("x"))
	none.cfg.ApplianceFingerprint = ""
	none.start(t)
	if _, err := none.agent.Cycle(context.Background()); err == nil || !strings.Contains(err.Error(), "set appliance_fingerprint") {
		t.Errorf("enrolment with an untrusted self-signed certificate and no fingerprint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(none.cfg.StateDir, "credential")); err == nil {
		t.Error("enrolled over an untrusted certificate")
	}
}

// TestAgentRevokedIsRefusedAtOnce: once the admin revokes the agent its next request
// is refused; its enrolment token is spent, so it stops instead of enrolling again,
// and works on no offer.
func TestAgentRevokedIsRefusedAtOnce(t *testing.T) {
	e := newRoadEnv(t, []byte("x"))
	e.cycle(t)
	e.app.mu.Lock()
	e.app.creds = map[string]string{} // revoked
	e.app.token = "pge1.another"      // the old token is used up
	e.app.mu.Unlock()
	e.app.setOffers(offer(71, "pkgs/tool_1.1.deb", true, true))
	_, err := e.agent.Cycle(context.Background())
	var ae *agent.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("Cycle after revocation: %v, want the enrolment refused (403)", err)
	}
	if progress, outcomes, gets := e.app.snapshot(); len(progress)+len(outcomes)+len(gets) != 0 {
		t.Errorf("a revoked agent worked on an offer: %v %v %v", progress, outcomes, gets)
	}
	if err := e.agent.Run(context.Background()); err == nil {
		t.Error("Run goes on after revocation, want it to stop with the refusal")
	}
	if _, err := os.Stat(filepath.Join(e.cfg.StateDir, "client.crt")); err == nil {
		t.Error("the revoked agent kept its client certificate")
	}
}

// TestAgentClockFarOff: an endpoint whose clock is years ahead still talks to the
// appliance (the pin does not depend on time), and postpones with a clock check
// instead of failing the release on expired-looking metadata.
func TestAgentClockFarOff(t *testing.T) {
	clk := clock.NewFake(time.Now().Add(3 * 365 * 24 * time.Hour))
	e := newRoadEnv(t, []byte("x"), func(o *agent.Options) { o.Clock = clk })
	e.app.setOffers(offer(81, "pkgs/tool_1.1.deb", true, true))
	e.cycle(t)
	_, outcomes, gets := e.app.snapshot()
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomePostponed || !strings.Contains(outcomes[0].Detail, "clock: ") {
		t.Fatalf("outcomes = %+v, want one postponement naming the clock", outcomes)
	}
	c, ok := findCheck(outcomes[0].Checks, agentapi.CheckClock)
	if !ok || c.OK || !strings.Contains(c.Value, "ahead of the appliance") {
		t.Errorf("clock check = %+v", c)
	}
	if len(gets) != 0 {
		t.Errorf("downloaded with a wrong clock: %v", gets)
	}
}

// enospcAfter lets n bytes through, then fails like a full disk.
type enospcAfter struct {
	w io.Writer
	n *int
}

func (l enospcAfter) Write(p []byte) (int, error) {
	if len(p) <= *l.n {
		*l.n -= len(p)
		return l.w.Write(p)
	}
	k, _ := l.w.Write(p[:*l.n])
	*l.n = 0
	return k, &os.PathError{Op: "write", Path: "part", Err: syscall.ENOSPC}
}

// TestAgentDiskFullDuringDownload: the disk filling up mid-download postpones (a
// disk_free check that failed, not a failed install), keeps what was written, and the
// download resumes from there once there is room.
func TestAgentDiskFullDuringDownload(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 1000))
	room := 4096
	e := newRoadEnv(t, data, func(o *agent.Options) {
		o.DownloadWriter = func(w io.Writer) io.Writer { return enospcAfter{w: w, n: &room} }
	})
	e.app.setOffers(offer(91, "pkgs/tool_1.1.deb", true, true))
	e.cycle(t)
	_, outcomes, _ := e.app.snapshot()
	if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomePostponed {
		t.Fatalf("outcomes = %+v, want a postponement", outcomes)
	}
	if c, ok := findCheck(outcomes[0].Checks, agentapi.CheckDiskFree); !ok || c.Value != "full" || !strings.Contains(c.Detail, "after 4096 of 10000 bytes") {
		t.Errorf("disk check = %+v", c)
	}
	room = 1 << 30
	e.cycle(t)
	_, outcomes, gets := e.app.snapshot()
	if len(outcomes) != 2 || outcomes[1].Status != agentapi.OutcomeSucceeded {
		t.Fatalf("outcomes = %+v, want the install once there is room", outcomes)
	}
	if gets[len(gets)-1] != "bytes=4096-" {
		t.Errorf("target GETs %q, want a resume from byte 4096", gets)
	}
}

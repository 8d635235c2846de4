package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/atomicfile"
)

// On the road the agent talks HTTPS to the appliance's agent listener:
//
//   - the appliance's certificate is pinned at enrolment: its SHA-256 fingerprint
//     (appliance_fingerprint in the config, the same fingerprint the appliance logs,
//     or else verified by ca_file or the system's roots) is kept in
//     state_dir/appliance.pin, and every later connection must present exactly that
//     certificate. A changed certificate is refused with ErrPinMismatch, with no
//     fallback to any CA.
//   - the agent has its own client certificate (mTLS): a P-256 key made on the
//     endpoint (state_dir/client.key, 0600) whose CSR the appliance's agent CA signs at
//     enrolment; renewed when the appliance says so at check-in (judged on the
//     appliance's clock, so an endpoint whose clock is far off still renews in time).

// ErrPinMismatch means the appliance presented a certificate other than the one
// pinned at enrolment.
var ErrPinMismatch = errors.New("the appliance's certificate is not the one pinned at enrolment")

// Files of the TLS state in state_dir.
const (
	pinFile        = "appliance.pin"
	clientKeyFile  = "client.key"
	clientCertFile = "client.crt"
)

// normFingerprint accepts a fingerprint with or without colons, any case, with an
// optional "sha256:" prefix; it returns "" for anything that is not 32 bytes of hex.
func normFingerprint(s string) string {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return ""
	}
	return s
}

// tlsState is the agent's side of TLS: the pin and the client certificate. It is safe
// for concurrent use.
type tlsState struct {
	dir      string
	expected string // appliance_fingerprint from the config, normalized ("" none)

	mu     sync.Mutex
	pin    string // normalized, once enrolled
	seen   string // the fingerprint the last handshake saw
	client *tls.Certificate
}

func loadTLSState(dir, expected string) (*tlsState, error) {
	s := &tlsState{dir: dir, expected: normFingerprint(expected)}
	if b, err := os.ReadFile(filepath.Join(dir, pinFile)); err == nil {
		if s.pin = normFingerprint(string(b)); s.pin == "" {
			return nil, fmt.Errorf("agent: tls: %s is not a certificate fingerprint", filepath.Join(dir, pinFile))
		}
	}
	if cert, err := tls.LoadX509KeyPair(filepath.Join(dir, clientCertFile), filepath.Join(dir, clientKeyFile)); err == nil {
		s.client = &cert
	}
	return s, nil
}

// config returns the client TLS config: with a pin, only the pinned certificate is
// accepted (no CA, no host name, no validity: the endpoint's clock does not matter);
// before enrolment, the config's fingerprint or else normal verification decides.
func (s *tlsState) config(base *tls.Config, now func() time.Time) *tls.Config {
	c := base.Clone()
	c.InsecureSkipVerify = true // verification is VerifyConnection's, below
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("agent: tls: the appliance presented no certificate")
		}
		got := normFingerprint(agentapi.Fingerprint(cs.PeerCertificates[0].Raw))
		s.mu.Lock()
		s.seen = got
		want := s.pin
		s.mu.Unlock()
		if want == "" {
			want = s.expected
		}
		if want == "" { // first contact without a fingerprint: the CA decides, once
			return verifyChain(cs, base.RootCAs, now())
		}
		if got != want {
			return fmt.Errorf("agent: tls: %w: pinned %s, the appliance presented %s (if the appliance's certificate was replaced on purpose, "+
				"remove %s and enrol again)", ErrPinMismatch, want, got, filepath.Join(s.dir, pinFile))
		}
		return nil
	}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.client == nil {
			return &tls.Certificate{}, nil // none yet: enrolment asks for one
		}
		return s.client, nil
	}
	return c
}

// verifyChain is crypto/tls's usual verification: the chain to roots (nil: the
// system's) and the host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool, now time.Time) error {
	opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("agent: tls: the appliance's certificate is not trusted (set appliance_fingerprint to the fingerprint the appliance logs, or ca_file): %w", err)
	}
	return nil
}

func (s *tlsState) hasClient() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client != nil
}

// keepPin pins the certificate the enrolment's connection saw.
func (s *tlsState) keepPin() error {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	if seen == "" {
		return nil // plain http
	}
	if err := atomicfile.Write(filepath.Join(s.dir, pinFile), []byte(seen+"\n"), 0o600); err != nil {
		return fmt.Errorf("agent: tls: keep pin: %w", err)
	}
	s.mu.Lock()
	s.pin = seen
	s.mu.Unlock()
	return nil
}

// newCSR makes a fresh P-256 key and a CSR for it; the key is kept once the appliance
// signed it (storeClient).
func newCSR(hostname string) (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls: key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hostname}}, key)
	if err != nil {
		return nil, "", fmt.Errorf("agent: tls: csr: %w", err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// storeClient keeps the key and the certificate the appliance signed for it, and uses
// them from the next connection on.
func (s *tlsState) storeClient(key *ecdsa.PrivateKey, certPEM string) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("agent: tls: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	cert, err := tls.X509KeyPair([]byte(certPEM), keyPEM)
	if err != nil {
		return fmt.Errorf("agent: tls: the appliance's client certificate: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, clientKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("agent: tls: keep key: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, clientCertFile), []byte(certPEM), 0o600); err != nil {
		return fmt.Errorf("agent: tls: keep certificate: %w", err)
	}
	s.mu.Lock()
	s.client = &cert
	s.mu.Unlock()
	return nil
}

// forgetClient drops the client certificate (a new enrolment asks for a new one).
// The pin stays: enrolling again never trusts another appliance certificate.
func (s *tlsState) forgetClient() {
	s.mu.Lock()
	s.client = nil
	s.mu.Unlock()
	for _, f := range []string{clientKeyFile, clientCertFile} {
		os.Remove(filepath.Join(s.dir, f))
	}
}

// Package clienttls is the client side of the agent listener's TLS, shared by the
// endpoint agent (agent/) and a child appliance talking to its parent (appliance/fleet):
// the server's certificate pinned at enrolment and the client certificate (mTLS) whose
// CSR the server's agent CA signs at enrolment and renews on request. One
// implementation, so the two clients cannot drift apart.
//
//   - The server's certificate is pinned at enrolment: its SHA-256 fingerprint (the
//     expected fingerprint from the client's config, the one the server logs, or else
//     verified by the CA roots given) is kept in DIR/appliance.pin, and every later
//     connection must present exactly that certificate. A changed certificate is
//     refused with ErrPinMismatch, with no fallback to any CA.
//   - The client certificate is a P-256 key made on the client (DIR/client.key, 0600)
//     and the certificate the server signed for it (DIR/client.crt); Renew replaces
//     both (judged on the server's clock, which asks for it, so a client whose clock is
//     far off still renews in time).
package clienttls

import (
	"context"
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

// ErrPinMismatch means the server presented a certificate other than the one pinned at
// enrolment.
var ErrPinMismatch = errors.New("the appliance's certificate is not the one pinned at enrolment")

// Files of the TLS state in its directory.
const (
	PinFile        = "appliance.pin"
	ClientKeyFile  = "client.key"
	ClientCertFile = "client.crt"
)

// NormFingerprint accepts a fingerprint with or without colons, any case, with an
// optional "sha256:" prefix; it returns "" for anything that is not 32 bytes of hex.
func NormFingerprint(s string) string {
	s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
		return ""
	}
	return s
}

// Options say where the state lives and how errors name things.
type Options struct {
	// Dir holds the pin, the key and the certificate.
	Dir string
	// Fingerprint is the server certificate's expected fingerprint from the config
	// ("" none: the CA roots decide at the first contact).
	Fingerprint string
	// Op prefixes errors ("agent: tls").
	Op string
	// FingerprintKey names the config key of Fingerprint in error texts
	// ("appliance_fingerprint").
	FingerprintKey string
}

// State is a client's side of TLS: the pin and the client certificate. It is safe for
// concurrent use.
type State struct {
	opts     Options
	expected string // normalized Fingerprint

	mu     sync.Mutex
	pin    string // normalized, once enrolled
	seen   string // the fingerprint the last handshake saw
	client *tls.Certificate
}

// Load reads the state kept in opts.Dir (none yet is no error).
func Load(opts Options) (*State, error) {
	s := &State{opts: opts, expected: NormFingerprint(opts.Fingerprint)}
	if b, err := os.ReadFile(filepath.Join(opts.Dir, PinFile)); err == nil {
		if s.pin = NormFingerprint(string(b)); s.pin == "" {
			return nil, fmt.Errorf("%s: %s is not a certificate fingerprint", opts.Op, filepath.Join(opts.Dir, PinFile))
		}
	}
	if cert, err := tls.LoadX509KeyPair(filepath.Join(opts.Dir, ClientCertFile), filepath.Join(opts.Dir, ClientKeyFile)); err == nil {
		s.client = &cert
	}
	return s, nil
}

// Config returns the client TLS config: with a pin, only the pinned certificate is
// accepted (no CA, no host name, no validity: the client's clock does not matter);
// before enrolment, the expected fingerprint or else normal verification against
// base.RootCAs (nil: the system's) decides.
func (s *State) Config(base *tls.Config, now func() time.Time) *tls.Config {
	c := base.Clone()
	c.InsecureSkipVerify = true // verification is VerifyConnection's, below
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%s: the appliance presented no certificate", s.opts.Op)
		}
		got := NormFingerprint(agentapi.Fingerprint(cs.PeerCertificates[0].Raw))
		s.mu.Lock()
		s.seen = got
		want := s.pin
		s.mu.Unlock()
		if want == "" {
			want = s.expected
		}
		if want == "" { // first contact without a fingerprint: the CA decides, once
			return s.verifyChain(cs, base.RootCAs, now())
		}
		if got != want {
			return fmt.Errorf("%s: %w: pinned %s, the appliance presented %s (if the appliance's certificate was replaced on purpose, "+
				"remove %s and enrol again)", s.opts.Op, ErrPinMismatch, want, got, filepath.Join(s.opts.Dir, PinFile))
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
func (s *State) verifyChain(cs tls.ConnectionState, roots *x509.CertPool, now time.Time) error {
	opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("%s: the appliance's certificate is not trusted (set %s to the fingerprint the appliance logs, or ca_file): %w", s.opts.Op, s.opts.FingerprintKey, err)
	}
	return nil
}

// HasClient reports whether a client certificate is held.
func (s *State) HasClient() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client != nil
}

// KeepPin pins the certificate the enrolment's connection saw (nothing over plain
// http).
func (s *State) KeepPin() error {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	if seen == "" {
		return nil
	}
	if err := atomicfile.Write(filepath.Join(s.opts.Dir, PinFile), []byte(seen+"\n"), 0o600); err != nil {
		return fmt.Errorf("%s: keep pin: %w", s.opts.Op, err)
	}
	s.mu.Lock()
	s.pin = seen
	s.mu.Unlock()
	return nil
}

// Pin is the pinned fingerprint (normalized), "" before enrolment.
func (s *State) Pin() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pin
}

// NewCSR makes a fresh P-256 key and a CSR for it naming cn; the key is kept once the
// server signed it (StoreClient).
func (s *State) NewCSR(cn string) (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("%s: key: %w", s.opts.Op, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, "", fmt.Errorf("%s: csr: %w", s.opts.Op, err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// StoreClient keeps the key and the certificate the server signed for it, and uses
// them from the next connection on.
func (s *State) StoreClient(key *ecdsa.PrivateKey, certPEM string) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("%s: %w", s.opts.Op, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	cert, err := tls.X509KeyPair([]byte(certPEM), keyPEM)
	if err != nil {
		return fmt.Errorf("%s: the appliance's client certificate: %w", s.opts.Op, err)
	}
	if err := os.MkdirAll(s.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", s.opts.Op, err)
	}
	if err := atomicfile.Write(filepath.Join(s.opts.Dir, ClientKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("%s: keep key: %w", s.opts.Op, err)
	}
	if err := atomicfile.Write(filepath.Join(s.opts.Dir, ClientCertFile), []byte(certPEM), 0o600); err != nil {
		return fmt.Errorf("%s: keep certificate: %w", s.opts.Op, err)
	}
	s.mu.Lock()
	s.client = &cert
	s.mu.Unlock()
	return nil
}

// Renew asks for a new client certificate for a new key: post sends the CSR (POST
// /agent/v1/certificate with agentapi.RenewRequest) and returns the PEM certificate
// the server signed; it is kept and presented from the next connection on.
func (s *State) Renew(ctx context.Context, cn string, post func(ctx context.Context, req agentapi.RenewRequest) (agentapi.RenewResponse, error)) error {
	key, csr, err := s.NewCSR(cn)
	if err != nil {
		return err
	}
	out, err := post(ctx, agentapi.RenewRequest{CSR: csr})
	if err != nil {
		return err
	}
	return s.StoreClient(key, out.ClientCert)
}

// Enrol runs an enrolment: with wantCert (https) a new key and its CSR naming cn go
// with it; enrol sends the request (POST /agent/v1/enroll with the CSR in
// agentapi.EnrollRequest) and returns the PEM client certificate the server signed (""
// none). The certificate the connection saw is pinned and the client certificate kept.
func (s *State) Enrol(ctx context.Context, cn string, wantCert bool, enrol func(ctx context.Context, csr string) (string, error)) error {
	var key *ecdsa.PrivateKey
	var csr string
	if wantCert {
		var err error
		if key, csr, err = s.NewCSR(cn); err != nil {
			return err
		}
	}
	cert, err := enrol(ctx, csr)
	if err != nil {
		return err
	}
	if err := s.KeepPin(); err != nil {
		return err
	}
	if cert != "" && key != nil {
		return s.StoreClient(key, cert)
	}
	return nil
}

// ForgetClient drops the client certificate (a new enrolment asks for a new one).
// The pin stays: enrolling again never trusts another server certificate.
func (s *State) ForgetClient() {
	s.mu.Lock()
	s.client = nil
	s.mu.Unlock()
	for _, f := range []string{ClientKeyFile, ClientCertFile} {
		os.Remove(filepath.Join(s.opts.Dir, f))
	}
}

// CertExpired reports whether an error text is the server's refusal of an expired
// client certificate (which the server still renews).
func CertExpired(msg string) bool { return strings.Contains(msg, "client certificate expired") }

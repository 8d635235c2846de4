package vendorhost

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
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/conf"
)

// The site CA's files in its directory (STATE/vendorhost).
const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
)

const (
	caValidity   = 20 * 365 * 24 * time.Hour
	leafValidity = 90 * 24 * time.Hour
	// leafRenew is how long before its end a cached leaf is replaced.
	leafRenew = 30 * 24 * time.Hour
)

// CA is the site CA: made at first start, its key never leaves the state directory;
// devices that trust its certificate accept the appliance for mapped vendor names.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// LoadCA reads the site CA from dir, or makes one (ECDSA P-256, the key 0600, both files
// written with atomicfile) when dir holds no certificate. A certificate without its key,
// or a key that does not match, is an error naming the file: a CA devices already trust
// is never silently replaced.
func LoadCA(dir string, now time.Time) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return createCA(dir, now)
	}
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %s exists but its key cannot be read (restore it, or remove both files to make a new CA every device must trust again): %w", certPath, err)
	}
	return parseCA(certPath, certPEM, keyPath, keyPEM)
}

func parseCA(certPath string, certPEM []byte, keyPath string, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("vendorhost ca: %s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("vendorhost ca: %s: no PEM PRIVATE KEY block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("vendorhost ca: %s is not the ECDSA key of %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("vendorhost ca: %s is not a CA certificate", certPath)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

func createCA(dir string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"Patchgate"}, CommonName: "Patchgate site CA " + now.UTC().Format("2006-01-02")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	// The key first: a crash between the two leaves no certificate, and the next start
	// makes a new pair (no device can trust a certificate that was never written).
	if err := atomicfile.Write(filepath.Join(dir, caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := atomicfile.Write(filepath.Join(dir, caCertFile), certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: %w", err)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// CertificatePEM is the CA certificate, PEM encoded: public, for devices to trust.
func (c *CA) CertificatePEM() []byte { return c.certPEM }

// Fingerprint is the sha256 of the CA certificate (DER), hex.
func (c *CA) Fingerprint() string {
	sum := sha256.Sum256(c.cert.Raw)
	return hex.EncodeToString(sum[:])
}

// issue makes a leaf certificate for one DNS name.
func (c *CA) issue(name string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// certCache holds one leaf per mapped name, renewed leafRenew before its end.
type certCache struct {
	ca    *CA
	mu    sync.Mutex
	leafs map[string]*tls.Certificate
}

// TLSConfig returns the configuration of an HTTPS listener for vendor names: a leaf of
// ca for each mapped name the client asks for by SNI, issued on first use and cached;
// a handshake without SNI, or for a name no repository maps, fails (no certificate is
// ever made for it). Call it once, before serving.
func (s *Server) TLSConfig(ca *CA) *tls.Config {
	s.certs.ca = ca
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.getCertificate,
	}
}

func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name, err := conf.HostName(hello.ServerName)
	if err != nil || !s.Mapped(name) {
		s.met.tlsRefused.Inc()
		return nil, fmt.Errorf("vendorhost: no certificate for %q: not a mapped vendor name", hello.ServerName)
	}
	now := s.clock.Now()
	cc := &s.certs
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c, ok := cc.leafs[name]; ok && now.Before(c.Leaf.NotAfter.Add(-leafRenew)) {
		return c, nil
	}
	c, err := cc.ca.issue(name, now)
	if err != nil {
		return nil, fmt.Errorf("vendorhost: issue a certificate for %s: %w", name, err)
	}
	if cc.leafs == nil {
		cc.leafs = map[string]*tls.Certificate{}
	}
	cc.leafs[name] = c
	s.met.issued.Inc()
	return c, nil
}

package firstboot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// Files Ensure keeps inside the daemon's state directory.
const (
	CertFile = "tls/admin.crt"   // the admin listener's certificate (PEM)
	KeyFile  = "tls/admin.key"   // its private key (PEM, PKCS#8, mode 0600)
	DoneFile = "setup/firstboot" // written last: first boot has run
)

// certValidity is how long the self-signed admin certificate is valid. Sites replace it
// with their own through the admin UI; until then browsers pin it by fingerprint.
const certValidity = 10 * 365 * 24 * time.Hour

// Identity is what the console shows about the admin listener: the certificate first
// boot made, and the daemon's one-time setup token (see SetupTokenFromLog).
type Identity struct {
	CertDER     []byte
	Fingerprint string // SHA-256 of CertDER, "AB:CD:..."
	Token       string // empty once setup is done (the daemon logs none)
}

// Ensure makes, under the state directory dir, the admin certificate and key unless
// they exist already, and returns them. hosts are the DNS names and IP addresses the
// certificate is for. It never replaces an existing key or certificate, so running it
// again (every boot) is harmless. The setup token is the daemon's own: it makes one at
// each start while no admin exists and logs it.
func Ensure(dir string, hosts []string, now time.Time, random io.Reader) (Identity, error) {
	for _, d := range []string{dir, filepath.Join(dir, "tls"), filepath.Join(dir, "setup")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Identity{}, fmt.Errorf("firstboot: %w", err)
		}
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if errors.Is(certErr, fs.ErrNotExist) || errors.Is(keyErr, fs.ErrNotExist) {
		certPEM, keyPEM, err := newCert(hosts, now, random)
		if err != nil {
			return Identity{}, err
		}
		// Key first: a certificate without its key is never left behind.
		if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
			return Identity{}, err
		}
		if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
			return Identity{}, err
		}
	}
	if err := writeAtomic(filepath.Join(dir, DoneFile), []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return Identity{}, err
	}
	return Load(dir)
}

// Load reads the certificate Ensure made.
func Load(dir string) (Identity, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return Identity{}, fmt.Errorf("firstboot: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return Identity{}, fmt.Errorf("firstboot: %s: no PEM certificate", filepath.Join(dir, CertFile))
	}
	return Identity{CertDER: block.Bytes, Fingerprint: agentapi.Fingerprint(block.Bytes)}, nil
}

func newCert(hosts []string, now time.Time, random io.Reader) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, nil, fmt.Errorf("firstboot: key: %w", err)
	}
	serial, err := randSerial(random)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Patchgate appliance", Organization: []string{"Patchgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("firstboot: certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("firstboot: key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

func randSerial(random io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, fmt.Errorf("firstboot: serial: %w", err)
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

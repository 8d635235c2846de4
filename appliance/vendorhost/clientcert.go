package vendorhost

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// MaxCSRBytes bounds a PEM certificate request SignClient reads.
const MaxCSRBytes = 8 << 10

// SignClient issues a client certificate (ExtKeyUsageClientAuth only, so it can never
// serve a vendor name) for the public key of a PEM CSR whose signature checks, with
// the subject cn whatever the CSR asks for, valid from now for validity. The
// appliance runs a CA of its own for agents (another directory, another key: see
// appliance/agenttls.go), so a device trusting the site CA trusts no agent.
func (c *CA) SignClient(csrPEM []byte, cn string, now time.Time, validity time.Duration) ([]byte, error) {
	if len(csrPEM) > MaxCSRBytes {
		return nil, fmt.Errorf("vendorhost ca: sign client: CSR is over %d bytes", MaxCSRBytes)
	}
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("vendorhost ca: sign client: not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: sign client: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("vendorhost ca: sign client: CSR signature: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Patchgate agent"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("vendorhost ca: sign client: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Pool is a pool holding the CA certificate alone, to verify what it signed.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

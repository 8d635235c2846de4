package conf

import (
	"crypto/x509"
	"fmt"
	"os"
)

// CertPool reads the PEM certificates of a ca_file key into a pool to verify servers
// with. An empty path is a nil pool: the system's roots. A file that cannot be read, or
// holds no PEM certificate, is an error naming it.
func CertPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

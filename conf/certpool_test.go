package conf

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestCertPool(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.pem")
	tests := []struct {
		name, path string
		want       string // "pool", "system roots" or the error
	}{
		{"empty path is the system roots", "", "system roots"},
		{"a PEM certificate", "testdata/ca.pem", "pool"},
		{"no PEM certificate", "testdata/junk.pem", "testdata/junk.pem: no PEM certificate in it"},
		{"missing file", missing, "open " + missing + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := CertPool(tt.path)
			got := fmt.Sprint(err)
			switch {
			case err == nil && pool == nil:
				got = "system roots"
			case err == nil:
				got = "pool"
			}
			if got != tt.want {
				t.Errorf("CertPool(%q) = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
}

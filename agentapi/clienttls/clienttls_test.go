package clienttls

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		name, in, want string
	}{
		{"plain", hex, hex},
		{"colons upper", strings.Repeat("AB:", 31) + "AB", hex},
		{"sha256 prefix", "sha256:" + hex, hex},
		{"short", "ab:cd", ""},
		{"not hex", strings.Repeat("zz", 32), ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NormFingerprint(tt.in); got != tt.want {
				t.Errorf("NormFingerprint(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// A pin file that is not a fingerprint is an error naming the file, not a silent
// fallback to trusting any certificate.
func TestLoadBadPin(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, PinFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Dir: dir, Op: "fleet: tls"})
	if err == nil || !strings.Contains(err.Error(), "fleet: tls: ") || !strings.Contains(err.Error(), PinFile) {
		t.Fatalf("Load with a bad pin: %v", err)
	}
	s, err := Load(Options{Dir: t.TempDir()})
	if err != nil || s.HasClient() || s.Pin() != "" {
		t.Fatalf("Load of an empty directory: %v", err)
	}
}

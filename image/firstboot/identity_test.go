package firstboot

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/goldentest"
)

var epoch = time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC)

func TestEnsureMakesCert(t *testing.T) {
	dir := t.TempDir()
	id, err := Ensure(dir, []string{"patchgate", "192.168.10.5"}, epoch, rand.Reader)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	cert, err := x509.ParseCertificate(id.CertDER)
	if err != nil {
		t.Fatalf("certificate does not parse: %v", err)
	}
	if err := cert.VerifyHostname("192.168.10.5"); err != nil {
		t.Errorf("certificate not valid for its IP: %v", err)
	}
	if err := cert.VerifyHostname("patchgate"); err != nil {
		t.Errorf("certificate not valid for its name: %v", err)
	}
	if !cert.NotAfter.After(epoch.Add(5 * 365 * 24 * time.Hour)) {
		t.Errorf("certificate expires %v, want years after %v", cert.NotAfter, epoch)
	}
	sum := sha256.Sum256(id.CertDER)
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); strings.ReplaceAll(id.Fingerprint, ":", "") != want {
		t.Errorf("Fingerprint = %s, want the SHA-256 %s", id.Fingerprint, want)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", KeyFile, st.Mode().Perm())
	}
}

func TestEnsureKeepsWhatExists(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, nil, epoch, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Ensure(dir, nil, epoch.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.CertDER, again.CertDER) {
		t.Errorf("second Ensure replaced the certificate")
	}
	// A lost key means a new pair, never a certificate without its key.
	if err := os.Remove(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal(err)
	}
	third, err := Ensure(dir, nil, epoch.Add(2*time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first.CertDER, third.CertDER) {
		t.Errorf("Ensure after the key was lost kept the old certificate")
	}
}

func TestEnsureRandomFailure(t *testing.T) {
	if _, err := Ensure(t.TempDir(), nil, epoch, bytes.NewReader(nil)); err == nil {
		t.Error("Ensure with an exhausted random source succeeded; want an error")
	}
}

func TestSetupTokenFromLog(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"none", `{"level":"INFO","msg":"ready"}` + "\n", ""},
		{"one", `{"level":"WARN","msg":"first-run setup: ...","url":"https://[::]:9080/setup","setup_token":"abc123"}` + "\n", "abc123"},
		{"last wins (daemon restarted)", `{"msg":"first-run setup","setup_token":"old"}` + "\n" + `not json "setup_token"` + "\n" + `{"msg":"first-run setup","setup_token":"new"}` + "\n", "new"},
		{"not json", `setup_token=abc` + "\n", ""},
	}
	for _, tt := range tests {
		if got := SetupTokenFromLog(strings.NewReader(tt.log)); got != tt.want {
			t.Errorf("%s: SetupTokenFromLog = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzSetupTokenFromLog: never panics, and a token it returns is a JSON string value
// present in the input.
func FuzzSetupTokenFromLog(f *testing.F) {
	f.Add([]byte(`{"msg":"x","setup_token":"abc"}` + "\n"))
	f.Add([]byte(`{"setup_token":12}` + "\n" + `{"setup_token":"\u0041"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok := SetupTokenFromLog(bytes.NewReader(data))
		if tok == "" {
			return
		}
		quoted, _ := json.Marshal(tok)
		if !bytes.Contains(data, []byte("setup_token")) || len(tok) > 128 {
			t.Fatalf("token %s from input %q", quoted, data)
		}
	})
}

func TestBanner(t *testing.T) {
	id := Identity{Fingerprint: "AB:CD:EF", Token: "AAAAA-BBBBB-CCCCC-DDDDD"}
	tests := []struct {
		name string
		info BannerInfo
	}{
		{"ready", BannerInfo{Version: "0.1.7", Addresses: []netip.Addr{netip.MustParseAddr("192.168.10.5"), netip.MustParseAddr("fd00::5")}, AdminPort: 9080, Identity: id}},
		{"no-address", BannerInfo{Version: "0.1.7", AdminPort: 9080, Identity: id}},
		{"setup-done", BannerInfo{Version: "0.1.7", Addresses: []netip.Addr{netip.MustParseAddr("10.0.2.15")}, AdminPort: 9080, Scheme: "http", Identity: Identity{Fingerprint: "AB"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Banner(&b, tt.info); err != nil {
				t.Fatal(err)
			}
			goldentest.Check(t, filepath.Join("testdata", "banner-"+tt.name+".txt"), b.Bytes(), *update)
		})
	}
}

func TestHostAddresses(t *testing.T) {
	mk := func(s string) net.Addr {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	got := HostAddresses([]net.Addr{mk("127.0.0.1/8"), mk("10.0.2.15/24"), mk("fe80::1/64"), mk("::1/128"), mk("fd00::5/64")})
	want := []netip.Addr{netip.MustParseAddr("10.0.2.15"), netip.MustParseAddr("fd00::5")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("HostAddresses = %v, want %v", got, want)
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/image/abupdate/abupdatetest"
)

func TestLoopback(t *testing.T) {
	cases := []struct{ name, listen, want string }{
		{"wildcard", ":8080", "127.0.0.1:8080"},
		{"IPv4 any", "0.0.0.0:80", "127.0.0.1:80"},
		{"IPv6 any", "[::]:80", "[::1]:80"},
		{"IPv4-mapped any", "[::ffff:0.0.0.0]:80", "127.0.0.1:80"},
		{"not host:port", "localhost", "localhost"},
		{"loopback", "127.0.0.1:8081", "127.0.0.1:8081"},
		{"one address", "192.0.2.7:80", "192.0.2.7:80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := appliance.LoopbackAddr(tc.listen); got != tc.want {
				t.Errorf("LoopbackAddr(%q) = %q, want %q", tc.listen, got, tc.want)
			}
		})
	}
}

// TestImageApplyRollback runs `patchgate image apply` on an admin's rollback request
// with the A/B layout in files: the running version is marked bad, the daemon's result
// is left behind, and a second run finds nothing to do.
func TestImageApplyRollback(t *testing.T) {
	const running, previous = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	files := map[string][]byte{
		"root-a":                          abupdatetest.Root(running),
		"root-b":                          abupdatetest.Root(previous),
		"cmdline":                         []byte("root=UUID=" + running + " ro quiet\n"),
		"esp/EFI/Linux/patchgate_1.0.efi": abupdatetest.UKI("root=UUID=" + running),
		"esp/EFI/Linux/patchgate_0.9.efi": abupdatetest.UKI("root=UUID=" + previous),
		"state/selfupdate/request.json":   nil,
		"patchgate.yaml":                  []byte("state:\n  dir: " + state + "\n"),
	}
	req, _ := json.Marshal(selfupdate.Request{ID: "0123456789abcdef", Action: selfupdate.ActionRollback, Reboot: true,
		RequestedBy: "ada", RequestedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)})
	files["state/selfupdate/request.json"] = req
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"image", "apply", "--config", filepath.Join(dir, "patchgate.yaml"), "--no-reboot",
		"--esp", filepath.Join(dir, "esp"), "--slot-a", filepath.Join(dir, "root-a"), "--slot-b", filepath.Join(dir, "root-b"),
		"--cmdline", filepath.Join(dir, "cmdline")}
	out, errOut, code := run(t, args...)
	if code != 0 || !strings.Contains(out, "rollback 0.9 requested by ada: done") {
		t.Fatalf("image apply: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "esp/EFI/Linux/patchgate_1.0+0-0.efi")); err != nil {
		t.Errorf("the running version is not marked bad: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(state, "selfupdate", selfupdate.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := selfupdate.ParseResult(data); err != nil || !res.OK || res.ID != "0123456789abcdef" || !res.Reboot {
		t.Errorf("result %+v, %v", res, err)
	}
	if out, _, code := run(t, args...); code != 0 || !strings.Contains(out, "no request") {
		t.Errorf("second apply: exit %d, %q; want nothing to do", code, out)
	}
}

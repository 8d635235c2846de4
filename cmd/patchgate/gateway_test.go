package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGatewayRules prints the dry-run for the gateway's site policy and, as root,
// has Debian's nft check it (nft -c) inside a namespace of the test's own.
func TestGatewayRules(t *testing.T) {
	site := "../../appliance/gateway/testdata/policies/site.yaml"
	out, stderr, code := run(t, "gateway", "rules", "--config", site)
	if code != 0 {
		t.Fatalf("gateway rules exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{"table inet patchgate", "chain seg_clinical", "delete table inet patchgate", "updates.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway rules output lacks %q", want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("gateway:\n  segments: [nowhere]\n"), 0o600)
	if _, stderr, code := run(t, "gateway", "rules", "--config", bad); code != 1 || !strings.Contains(stderr, `no segment named "nowhere"`) {
		t.Errorf("gateway rules on a bad config: exit %d, stderr %q; want 1 naming the problem", code, stderr)
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to let nft check the text in a namespace of its own")
	}
	for _, p := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (Debian packages iproute2, nftables)", p)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	ns := "pg-cli-" + hex.EncodeToString(b)
	if o, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, o)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	check := exec.Command("ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
	check.Stdin = strings.NewReader(out)
	if o, err := check.CombinedOutput(); err != nil {
		t.Errorf("nft -c rejects the dry-run: %v\n%s", err, o)
	}
}

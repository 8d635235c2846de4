package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/test/netlab"
)

// These tests program nftables for real, each in a network namespace of its own that
// holds no addresses and no links but lo, so nothing they do reaches the host's
// network. The Go side reaches into the namespace through a file handle on it
// (nftables.WithNetNSFd), so the test process itself never changes namespace.

// newNetNS creates a uniquely named network namespace, removed when the test ends, and
// returns its name and a file descriptor for it.
func newNetNS(t *testing.T) (string, int) {
	t.Helper()
	netlab.Require(t, "nft")
	b := make([]byte, 4)
	rand.Read(b)
	name := "pg-gw-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatalf("open netns: %v", err)
	}
	t.Cleanup(func() {
		f.Close()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	return name, int(f.Fd())
}

// nftIn runs Debian's nft inside namespace ns and returns its output.
func nftIn(t *testing.T, ns string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustNft(t *testing.T, ns string, stdin string, args ...string) string {
	t.Helper()
	out, err := nftIn(t, ns, stdin, args...)
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

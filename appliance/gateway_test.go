package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/test/netlab"
)

// The gateway programs nftables, so these tests run the System in a child process
// inside a network namespace of their own (the test binary re-executed under `ip netns
// exec`): nothing touches the host's rules.

const gatewayChildEnv = "PG_APPLIANCE_GATEWAY_CHILD"

// inNetNS re-runs the test named test in a new network namespace (lo up), optionally
// through setpriv as user nobody, and returns its output and error.
func inNetNS(t *testing.T, test string, asNobody bool) (string, error) {
	t.Helper()
	netlab.Require(t, "nft", "setpriv")
	b := make([]byte, 4)
	rand.Read(b)
	ns := "pg-app-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v\n%s", err, out)
	}
	exe, _ := os.Executable()
	args := []string{"netns", "exec", ns}
	if asNobody {
		args = append(args, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all")
	}
	args = append(args, exe, "-test.run=^"+test+"$", "-test.v")
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), gatewayChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestGatewayWiring(t *testing.T) {
	if os.Getenv(gatewayChildEnv) != "" {
		gatewayWiringChild(t)
		return
	}
	out, err := inNetNS(t, "TestGatewayWiring", false)
	if err != nil {
		t.Fatalf("child in its namespace failed: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// gatewayWiringChild runs inside the namespace: the System with the gateway enabled,
// its table, metrics and panel, a SIGHUP reload, and the removal on stop (open_on_stop).
func gatewayWiringChild(t *testing.T) {
	cfg := testConfig(t)
	cfg.Gateway.Enabled = true
	cfg.Gateway.Egress.Repositories = []string{"192.0.2.80"}
	cfg.Gateway.OpenOnStop = true // the removal on stop is the admin's choice
	dir := t.TempDir()
	path := filepath.Join(dir, "patchgate.yaml")
	writeConfig(t, path, cfg)
	sys := newSystem(t, cfg, Options{ConfigPath: path})
	if sys.gateway == nil {
		t.Fatal("gateway.enabled: true built no gateway")
	}
	cancel, done := runSystem(t, sys)
	waitReady(t, sys)
	if out := nft(t, "list", "table", "inet", "patchgate"); !strings.Contains(out, "192.0.2.80") {
		t.Errorf("running system's table lacks the configured repository:\n%s", out)
	}

	// Metrics: registered on the System's registry, named by the rules.
	if len(lintMetrics(t, sys, "patchgate_gateway_")) == 0 {
		t.Error("no patchgate_gateway_* metrics registered")
	}
	found := false
	for _, p := range sys.Status(context.Background()).Panels {
		found = found || p.ID == "gateway"
	}
	if !found {
		t.Error("no gateway panel on the status page")
	}

	// The resolver hands its answers to the gateway: the appliance's own set fills.
	if sys.resolver != nil {
		sys.gateway.Learned("", netip.Addr{}, "updates.example.com", []netip.Addr{netip.MustParseAddr("192.0.2.81")}, time.Minute)
		if out := nft(t, "list", "set", "inet", "patchgate", "own_v4"); !strings.Contains(out, "192.0.2.81") {
			t.Errorf("own_v4 lacks a learned address:\n%s", out)
		}
	}

	// SIGHUP re-reads the file and re-applies.
	cfg.Gateway.Egress.Repositories = []string{"192.0.2.90"}
	writeConfig(t, path, cfg)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitUntil(t, "SIGHUP to re-apply the changed repositories", 5*time.Second, func() bool {
		return strings.Contains(nft(t, "list", "set", "inet", "patchgate", "repos_v4"), "192.0.2.90")
	})

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	done <- nil // for the cleanup
	if out := nft(t, "list", "tables"); strings.Contains(out, "patchgate") {
		t.Errorf("table still there after stop:\n%s", out)
	}
}

// writeConfig writes cfg where the gateway's reload reads it (only the gateway
// section is re-read; the listeners differ to pass validation).
func writeConfig(t *testing.T, path string, cfg *config.Config) {
	t.Helper()
	c := *cfg
	c.Distribution.Listen = "127.0.0.1:1"
	// The dev config's list files are relative to configs/; the copy is elsewhere, and
	// loading checks that every file it names exists.
	c.Resolver.Lists = slices.Clone(c.Resolver.Lists)
	for i, l := range c.Resolver.Lists {
		c.Resolver.Lists[i].Files = slices.Clone(l.Files)
		for j, f := range l.Files {
			if !filepath.IsAbs(f) {
				abs, err := filepath.Abs(filepath.Join("..", "configs", f))
				if err != nil {
					t.Fatal(err)
				}
				c.Resolver.Lists[i].Files[j] = abs
			}
		}
	}
	b, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func nft(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestGatewayWithoutCapability: enabled without CAP_NET_ADMIN, New fails and says why.
func TestGatewayWithoutCapability(t *testing.T) {
	if os.Getenv(gatewayChildEnv) != "" {
		cfg := testConfig(t)
		cfg.Gateway.Enabled = true
		os.Chmod(cfg.State.Dir, 0o777)
		_, err := New(context.Background(), cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
			t.Fatalf("New without CAP_NET_ADMIN = %v, want an error naming CAP_NET_ADMIN", err)
		}
		t.Logf("New: %v", err)
		return
	}
	out, err := inNetNS(t, "TestGatewayWithoutCapability", true)
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "CAP_NET_ADMIN") {
		t.Errorf("child output lacks the CAP_NET_ADMIN message:\n%s", out)
	}
}

func TestGatewayOffInDevConfig(t *testing.T) {
	sys := newSystem(t, testConfig(t), Options{})
	if sys.gateway != nil {
		t.Error("the dev config built a gateway; make run runs without CAP_NET_ADMIN")
	}
}

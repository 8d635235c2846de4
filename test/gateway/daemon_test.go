package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/test/netlab"
)

func TestMain(m *testing.M) {
	netlab.RunRoles(map[string]func([]string) int{"appliance": roleAppliance})
	os.Exit(m.Run())
}

// roleAppliance runs the real daemon (appliance.System) from the config file args[0],
// inside the appliance namespace, until SIGTERM; its JSON log goes to stderr.
func roleAppliance(args []string) int {
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sys, err := appliance.New(ctx, cfg, appliance.Options{Logger: log, ConfigPath: args[0]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sys.Close()
	if err := sys.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const daemonConfig = `
state:
  dir: %s
admin:
  listen: 127.0.0.1:9080
distribution:
  listen: 127.0.0.1:8080
` + labSegments + `
resolver:
  listen: ["10.30.0.1:53"]
  upstreams: [{address: "203.0.113.53:53", protocol: udp}]
  lists:
    - name: updates
      names: [updates.example]
  segments:
    - segment: devices
      allow: [updates]
gateway:
  enabled: true
  segments: [devices]
  grace: 0s
inventory:
  passive: {enabled: false}
  scan: {enabled: false}
auth:
  tls: {mode: "off"}
`

// TestRealDaemon runs patchgate's System (resolver and gateway wired together) in the
// appliance namespace and checks the story end to end through it.
func TestRealDaemon(t *testing.T) {
	l := New(t)
	l.StartServers(t, 2)
	dir := t.TempDir()
	path := filepath.Join(dir, "patchgate.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(daemonConfig, filepath.Join(dir, "state"))), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &netlab.Buffer{}
	cmd := l.Appliance.RoleCommand(context.Background(), "appliance", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	l.Appliance.StartCmd(t, cmd)
	dev := l.Device.NS

	// Probe only once the daemon is ready (every service, the gateway's ruleset
	// included): its resolver answers as soon as it listens, which may be before the
	// gateway has applied its first ruleset, and a probe in between is forwarded by a
	// namespace with no rules at all. (On a loaded machine that window was wide enough
	// for the IP-literal probe below to pass.)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"ready"`) {
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("the daemon never became ready; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := l.Nft(t, "list", "chain", "inet", "patchgate", "forward"); !strings.Contains(out, "policy drop;") {
		t.Fatalf("ready, but the forward chain is not in place:\n%s", out)
	}
	var addrs []string
	deadline = time.Now().Add(30 * time.Second)
	for {
		as, err := lookup(dev, ApplianceLAN, "udp", UpdateName)
		if err == nil && len(as) > 0 {
			for _, a := range as {
				addrs = append(addrs, a.String())
			}
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("the daemon's resolver never answered (%v); log:\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(addrs) != 1 || addrs[0] != UpdateAddr.String() {
		t.Fatalf("daemon resolved %s to %v, want [%s]", UpdateName, addrs, UpdateAddr)
	}
	if body, err := httpGet(dev, UpdateAddr); err != nil || body != "update" {
		t.Fatalf("device GET after the daemon's answer = %q, %v; log:\n%s", body, err, logs.String())
	}
	if _, err := httpGet(dev, OtherAddr); err == nil {
		t.Error("device reached the other server by IP literal through the daemon")
	}
	if _, err := lookup(dev, ResolverAddr, "udp", UpdateName); err == nil {
		t.Error("device queried the internet's resolver through the daemon")
	}
	if as, _ := lookup(dev, ApplianceLAN, "udp", "other.example."); len(as) != 0 {
		t.Errorf("daemon answered a name off the allowlist with %v", as)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"dst":"`+OtherAddr.String()+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no deny log line for %s; log:\n%s", OtherAddr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// SIGTERM: the daemon leaves its table (open_on_stop is false by default), so the
	// segment stays closed while it is down.
	netlab.Stop(cmd)
	if out := l.Nft(t, "list", "chain", "inet", "patchgate", "forward"); !strings.Contains(out, "policy drop;") {
		t.Errorf("forward chain after the daemon stopped, want it kept with policy drop:\n%s", out)
	}
	if _, err := httpGet(dev, OtherAddr); err == nil {
		t.Error("device reached the other server by IP literal while the daemon was down")
	}
}

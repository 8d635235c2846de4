package agentpkg

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// An unsigned TUF root: the agent only parses its trusted roots at start, and this
// test offers nothing to verify.
const nspawnRoot = `{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"expires":"2099-01-01T00:00:00Z","consistent_snapshot":true,"keys":{},` +
	`"roles":{"root":{"keyids":[],"threshold":1},"targets":{"keyids":[],"threshold":1},"snapshot":{"keyids":[],"threshold":1},"timestamp":{"keyids":[],"threshold":1}}},"signatures":[]}`

// nspawnBoot is run by `unshare -m` (the mounts die with it): a writable overlay over
// a bind mount of the host's / (the host's own Debian with systemd; the host is not
// changed), a fresh machine-id and host name, the probe unit, and systemd booted in it by
// systemd-nspawn on the host's network.
const nspawnBoot = `set -eu
d=$1 machine=$2
mount --make-rprivate /
mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/root"
mount --bind / "$d/lower"
mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/root"
r=$d/root
tr -d - </proc/sys/kernel/random/uuid >"$r/etc/machine-id"
echo "$machine" >"$r/etc/hostname"
mkdir -p "$r/pgtest"
cp "$d/in/"* "$r/pgtest/"
chmod 0755 "$r/pgtest/probe.sh"
cp "$d/in/pgprobe.service" "$d/in/pgprobe.target" "$r/etc/systemd/system/"
exec systemd-nspawn -q -D "$r" --machine="$machine" --boot --register=no --keep-unit --link-journal=no \
	--bind="$d/out:/out" --console=pipe -- systemd.unit=pgprobe.target
`

// nspawnProbe runs inside the container as systemd's boot target: installs the
// package (@INSTALL@), fills in the config, enables and starts the unit as
// agent/README.md says, waits for the host to have seen the agent check in, records the
// unit's state, installs the same package over itself (@UPGRADE@: the package manager
// runs its upgrade scripts), records the state again, removes the package (@REMOVE@)
// and powers off.
const nspawnProbe = `#!/bin/sh
exec >/out/probe.log 2>&1
set -x
@INSTALL@ || exit 1
cp /pgtest/agent.yaml /etc/patchgate-agent/agent.yaml
cp /pgtest/token /pgtest/demo-root.json /etc/patchgate-agent/
stat -c '%a %U:%G %n' /etc/patchgate-agent /etc/patchgate-agent/agent.yaml /var/lib/patchgate-agent >/out/modes
systemctl enable --now patchgate-agent.service
i=0
while [ ! -e /out/seen ] && [ $i -lt 900 ]; do sleep 0.1; i=$((i+1)); done
systemctl show -p ActiveState,SubState,NRestarts,Result,User patchgate-agent.service >/out/show
journalctl -u patchgate-agent.service --no-pager -o cat >/out/journal
systemctl is-enabled patchgate-agent.service >/out/enabled
systemctl show -p MainPID --value patchgate-agent.service >/out/pid-before
@UPGRADE@ || exit 1
systemctl is-enabled patchgate-agent.service >/out/after-upgrade
systemctl is-active patchgate-agent.service >>/out/after-upgrade
systemctl show -p MainPID --value patchgate-agent.service >/out/pid-after
cmp /pgtest/agent.yaml /etc/patchgate-agent/agent.yaml && echo kept >/out/config-kept
@REMOVE@
systemctl is-active patchgate-agent.service >/out/after-remove
echo done >/out/done
`

// pkgKinds are the Linux packages the container test installs, each with its package
// manager's commands (the package is /pgtest/agent.pkg in the container). Debian's rpm
// refuses to install without --force-debian ("use Alien instead"); the .rpm's declared
// dependencies are rpmlib features only (TestAgentRpm), so no --nodeps is needed.
var pkgKinds = []struct {
	name, glob, tool         string
	install, upgrade, remove string
}{
	{"deb", "patchgate-agent_*_amd64.deb", "dpkg",
		"dpkg -i /pgtest/agent.pkg", "dpkg -i /pgtest/agent.pkg", "dpkg -r patchgate-agent"},
	{"rpm", "patchgate-agent-*.x86_64.rpm", "rpm",
		"rpm -i --force-debian /pgtest/agent.pkg", "rpm -U --replacepkgs --force-debian /pgtest/agent.pkg", "rpm -e patchgate-agent"},
}

const nspawnUnits = `[Unit]
Description=Patchgate agent package test
After=basic.target
[Service]
Type=oneshot
TimeoutStartSec=150
ExecStart=/pgtest/probe.sh
ExecStopPost=/bin/systemctl --no-block poweroff
`

const nspawnTarget = `[Unit]
Description=Patchgate agent package test boot
Requires=basic.target pgprobe.service
After=basic.target
AllowIsolate=yes
`

// standIn is the appliance's agent API as far as enrolment and a check-in.
type standIn struct {
	mu       sync.Mutex
	enrolled int
	checkins []agentapi.Facts
	seen     chan struct{}
	once     sync.Once
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/agent/v1/enroll":
		var req agentapi.EnrollRequest
		if json.NewDecoder(r.Body).Decode(&req) != nil || req.Token != "pge1.nspawn-token" {
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": "unknown enrolment token"})
			return
		}
		s.mu.Lock()
		s.enrolled++
		s.mu.Unlock()
		json.NewEncoder(w).Encode(agentapi.EnrollResponse{AgentID: "ag-nspawn", Credential: "pga1.ag-nspawn.secret", PollIntervalSeconds: 300})
	case "/agent/v1/checkin":
		if r.Header.Get("Authorization") != "Bearer pga1.ag-nspawn.secret" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "unknown credential"})
			return
		}
		var f agentapi.Facts
		json.NewDecoder(r.Body).Decode(&f)
		s.mu.Lock()
		s.checkins = append(s.checkins, f)
		s.mu.Unlock()
		s.once.Do(func() { close(s.seen) })
		json.NewEncoder(w).Encode(agentapi.OffersResponse{AgentID: "ag-nspawn", PollIntervalSeconds: 300})
	default:
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"error": "not part of this test"})
	}
}

// TestAgentPackageStartsUnderSystemd installs the amd64 .deb and the x86_64 .rpm, each
// in a container booted with systemd as PID 1 (systemd-nspawn over a throwaway overlay
// of the host's own Debian userland, which must have systemd installed; the .rpm with
// Debian's rpm), starts the unit as the README says and checks that the agent, running
// under the unit's hardening, enrols with and checks in to a stand-in appliance on the
// host's loopback, that systemd reports the unit active and running with no restarts,
// that the package's directories have the unit's modes, that an upgrade (the package
// over itself) keeps the unit enabled and running and the filled-in config, and that
// removing the package stops it. Root only; skipped with -short (about 10-30 s per
// package besides building them).
func TestAgentPackageStartsUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("boots systemd in a container: not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("systemd-nspawn and the overlay mount need root")
	}
	for _, p := range []string{"systemd-nspawn", "unshare"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's systemd-container, util-linux)", p)
		}
	}
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Skip("the host's userland has no systemd to boot (Debian's systemd package)")
	}
	for _, k := range pkgKinds {
		t.Run(k.name, func(t *testing.T) {
			if _, err := exec.LookPath(k.tool); err != nil {
				t.Skipf("%s is not installed (Debian's %s package)", k.tool, k.tool)
			}
			probe := strings.NewReplacer("@INSTALL@", k.install, "@UPGRADE@", k.upgrade, "@REMOVE@", k.remove).Replace(nspawnProbe)
			bootPackage(t, agentPackage(t, k.glob), probe)
		})
	}
}

// bootPackage boots the container with the package at /pgtest/agent.pkg and probe as
// its boot target's script, and checks what the probe recorded.
func bootPackage(t *testing.T, pkg, probe string) {

	app := &standIn{seen: make(chan struct{})}
	srv := httptest.NewServer(app) // 127.0.0.1: the container shares the host's network
	t.Cleanup(srv.Close)

	d := t.TempDir()
	machine := fmt.Sprintf("pgagent-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll("/run/systemd/nspawn/propagate/" + machine) })
	in := filepath.Join(d, "in")
	os.MkdirAll(in, 0o755)
	os.MkdirAll(filepath.Join(d, "out"), 0o755)
	data, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"agent.pkg": string(data),
		"agent.yaml": "appliance: " + srv.URL + "\ntoken_file: /etc/patchgate-agent/token\nstate_dir: /var/lib/patchgate-agent\n" +
			"repos: {demo: /etc/patchgate-agent/demo-root.json}\nallow_commands: [/usr/bin/dpkg]\nmin_battery_percent: 0\nrestore_point: off\n",
		"token":           "pge1.nspawn-token\n",
		"demo-root.json":  nspawnRoot,
		"probe.sh":        probe,
		"pgprobe.service": nspawnUnits,
		"pgprobe.target":  nspawnTarget,
	} {
		if err := os.WriteFile(filepath.Join(in, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "sh", "-c", nspawnBoot, "boot", d, machine)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // nspawn halts the container
	cmd.WaitDelay = 20 * time.Second
	var console strings.Builder
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-app.seen:
	case <-ctx.Done():
	}
	os.WriteFile(filepath.Join(d, "out", "seen"), nil, 0o644)
	err = cmd.Wait()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(d, "out", name))
		return strings.TrimSpace(string(b))
	}
	if err != nil || read("done") != "done" {
		t.Fatalf("container: %v (%v)\nconsole:\n%s\nprobe:\n%s\nagent journal:\n%s", err, ctx.Err(), console.String(), read("probe.log"), read("journal"))
	}

	t.Logf("systemctl show patchgate-agent.service:\n%s\nthe agent's journal:\n%s", read("show"), read("journal"))
	app.mu.Lock()
	enrolled, checkins := app.enrolled, append([]agentapi.Facts(nil), app.checkins...)
	app.mu.Unlock()
	if enrolled != 1 || len(checkins) == 0 {
		t.Fatalf("enrolments %d, check-ins %d; want the agent to enrol and check in\nprobe:\n%s\njournal:\n%s", enrolled, len(checkins), read("probe.log"), read("journal"))
	}
	if f := checkins[0]; f.Hostname != machine || f.OS != "linux" {
		t.Errorf("check-in facts host %q os %q, want the container %q on linux", f.Hostname, f.OS, machine)
	}
	show := read("show")
	for _, want := range []string{"ActiveState=active", "SubState=running", "NRestarts=0", "User=root"} {
		if !strings.Contains("\n"+show+"\n", "\n"+want+"\n") {
			t.Errorf("systemctl show lacks %s:\n%s\njournal:\n%s", want, show, read("journal"))
		}
	}
	if j := read("journal"); strings.Contains(j, "already exists but the mode is different") {
		t.Errorf("the package's directories do not have the unit's modes:\n%s", j)
	}
	if got := read("enabled"); got != "enabled" {
		t.Errorf("is-enabled = %q, want enabled", got)
	}
	if got := read("modes"); got != "750 root:root /etc/patchgate-agent\n640 root:root /etc/patchgate-agent/agent.yaml\n700 root:root /var/lib/patchgate-agent" {
		t.Errorf("installed modes:\n%s\nwant /etc/patchgate-agent 750, agent.yaml 640, /var/lib/patchgate-agent 700, all root's", got)
	}
	if got := read("after-upgrade"); got != "enabled\nactive" {
		t.Errorf("after the upgrade the unit is %q, want enabled and active", got)
	}
	if before, after := read("pid-before"), read("pid-after"); before == after {
		t.Errorf("the upgrade left the agent's process %s running, want it restarted on the new binary", before)
	}
	if read("config-kept") != "kept" {
		t.Errorf("the upgrade replaced the filled-in agent.yaml (want it kept: a conffile, config(noreplace))")
	}
	if got := read("after-remove"); got == "active" {
		t.Errorf("after removing the package the unit is %q, want it stopped", got)
	}
}

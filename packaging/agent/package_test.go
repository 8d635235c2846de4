// Package agentpkg holds the agent's packaging files (nfpm.yaml, the systemd unit, the
// launchd plist) and the test of the .deb that `make agent-packages` builds.
package agentpkg

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// agentDeb returns the absolute path of dist/patchgate-agent_*_amd64.deb, running
// `make agent-packages` first when there is none, except with -short (then it skips).
func agentDeb(t *testing.T) string {
	t.Helper()
	repo := "../.."
	debs, _ := filepath.Glob(filepath.Join(repo, "dist", "patchgate-agent_*_amd64.deb"))
	if len(debs) == 0 {
		if testing.Short() {
			t.Skip("no dist/patchgate-agent_*_amd64.deb: run make agent-packages (builds nfpm: minutes the first time)")
		}
		run(t, repo, "make", "agent-packages")
		debs, _ = filepath.Glob(filepath.Join(repo, "dist", "patchgate-agent_*_amd64.deb"))
	}
	if len(debs) == 0 {
		t.Fatal("make agent-packages made no amd64 .deb")
	}
	deb, _ := filepath.Abs(debs[len(debs)-1])
	return deb
}

// TestAgentDeb installs the amd64 .deb into a throwaway root (dpkg --root, scripts
// without chroot: they leave the host alone when DPKG_ROOT is set), checks what it
// put there with which modes, and has systemd-analyze verify the installed unit
// (ExecStart pointed at the binary inside that root). Without dist/*.deb it runs
// `make agent-packages` first, except with -short.
func TestAgentDeb(t *testing.T) {
	for _, p := range []string{"dpkg", "dpkg-deb", "systemd-analyze"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's dpkg and systemd packages)", p)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root")
	}
	deb := agentDeb(t)
	list := run(t, ".", "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/patchgate-agent",
		"./usr/lib/systemd/system/patchgate-agent.service",
		"drwxr-x--- root/root", "./etc/patchgate-agent/",
		"-rw-r----- root/root", "./etc/patchgate-agent/agent.yaml",
		"drwx------ root/root", "./var/lib/patchgate-agent/",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("dpkg-deb -c lacks %q:\n%s", want, list)
		}
	}
	if pkg := run(t, ".", "dpkg-deb", "-f", deb, "Package"); strings.TrimSpace(pkg) != "patchgate-agent" {
		t.Errorf("Package = %q", pkg)
	}
	ctrl := t.TempDir()
	run(t, ".", "dpkg-deb", "-e", deb, ctrl)
	if b, err := os.ReadFile(filepath.Join(ctrl, "conffiles")); err != nil || !strings.Contains(string(b), "/etc/patchgate-agent/agent.yaml") {
		t.Errorf("conffiles = %q, %v; want agent.yaml kept on upgrade", b, err)
	}

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/updates", "var/lib/dpkg/info"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	run(t, ".", "dpkg", "--root="+root, "--force-script-chrootless", "--log=/dev/null", "-i", deb)
	if fi, err := os.Stat(filepath.Join(root, "var/lib/patchgate-agent")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v %v, want 0700", fi, err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/patchgate-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	verify := filepath.Join(t.TempDir(), "patchgate-agent.service")
	os.WriteFile(verify, []byte(strings.ReplaceAll(string(unit), "/usr/bin/patchgate-agent", filepath.Join(root, "usr/bin/patchgate-agent"))), 0o644)
	run(t, ".", "systemd-analyze", "verify", "--man=no", verify)
	run(t, ".", "dpkg", "--root="+root, "--force-script-chrootless", "--log=/dev/null", "-r", "patchgate-agent")
}

// TestLaunchdPlist checks the macOS plist is well-formed XML naming the agent.
func TestLaunchdPlist(t *testing.T) {
	b, err := os.ReadFile("com.patchgate.agent.plist")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Dict struct {
			Keys    []string `xml:"key"`
			Strings []string `xml:"string"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("plist: %v", err)
	}
	if len(doc.Dict.Keys) == 0 || doc.Dict.Keys[0] != "Label" || doc.Dict.Strings[0] != "com.patchgate.agent" {
		t.Errorf("plist keys %q strings %q", doc.Dict.Keys, doc.Dict.Strings)
	}
	for _, k := range []string{"ProgramArguments", "RunAtLoad", "KeepAlive"} {
		if !strings.Contains(string(b), "<key>"+k+"</key>") {
			t.Errorf("plist lacks %s", k)
		}
	}
}

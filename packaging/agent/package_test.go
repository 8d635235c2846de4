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

// agentPackage returns the absolute path of the package dist/GLOB (e.g.
// patchgate-agent_*_amd64.deb), running `make agent-packages` first when there is
// none, except with -short (then it skips).
func agentPackage(t *testing.T, glob string) string {
	t.Helper()
	repo := "../.."
	pkgs, _ := filepath.Glob(filepath.Join(repo, "dist", glob))
	if len(pkgs) == 0 {
		if testing.Short() {
			t.Skipf("no dist/%s: run make agent-packages (builds nfpm: minutes the first time)", glob)
		}
		run(t, repo, "make", "agent-packages")
		pkgs, _ = filepath.Glob(filepath.Join(repo, "dist", glob))
	}
	if len(pkgs) == 0 {
		t.Fatalf("make agent-packages made no dist/%s", glob)
	}
	p, _ := filepath.Abs(pkgs[len(pkgs)-1])
	return p
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
	deb := agentPackage(t, "patchgate-agent_*_amd64.deb")
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

// TestAgentRpm reads the x86_64 .rpm back with rpm -qp: its files with their modes
// and owners (/etc/patchgate-agent 0750, as the unit's ConfigurationDirectoryMode),
// agent.yaml marked config(noreplace), the scriptlets (the shared postinstall and
// preremove scripts, run by /bin/sh) and its declared dependencies (rpmlib features
// only, so Debian's rpm installs it without --nodeps). Without dist/*.rpm it runs
// `make agent-packages` first, except with -short.
func TestAgentRpm(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (Debian's rpm package)")
	}
	rpm := agentPackage(t, "patchgate-agent-*.x86_64.rpm")
	files := run(t, ".", "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} flags=%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm)
	for _, want := range []string{
		"-rwxr-xr-x root:root flags= /usr/bin/patchgate-agent",
		"-rw-r--r-- root:root flags= /usr/lib/systemd/system/patchgate-agent.service",
		"drwxr-x--- root:root flags= /etc/patchgate-agent",
		"-rw-r----- root:root flags=cn /etc/patchgate-agent/agent.yaml", // c: config, n: noreplace
		"drwx------ root:root flags= /var/lib/patchgate-agent",
	} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("rpm -qp lacks %q:\n%s", want, files)
		}
	}
	if name := run(t, ".", "rpm", "-qp", "--qf", "%{NAME} %{ARCH}", rpm); name != "patchgate-agent x86_64" {
		t.Errorf("name and arch = %q", name)
	}
	for _, req := range strings.Split(strings.TrimSpace(run(t, ".", "rpm", "-qpR", rpm)), "\n") {
		if !strings.HasPrefix(req, "rpmlib(") {
			t.Errorf("the .rpm requires %q: Debian's rpm database would not have it (the container test installs without --nodeps)", req)
		}
	}
	scripts := run(t, ".", "rpm", "-qp", "--scripts", rpm)
	for name, file := range map[string]string{"postinstall": "postinstall.sh", "preuninstall": "preremove.sh"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if want := name + " scriptlet (using /bin/sh):\n" + string(b); !strings.Contains(scripts, want) {
			t.Errorf("rpm --scripts lacks %s as %s:\n%s", file, name, scripts)
		}
	}
	if strings.Contains(scripts, "preinstall") || strings.Contains(scripts, "postuninstall") {
		t.Errorf("unexpected scriptlets:\n%s", scripts)
	}
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// serviceCase is doService on goos with o, and the output or error it should give.
type serviceCase struct {
	name    string
	goos    string
	install bool
	o       serviceOpts
	want    string
}

// TestServiceDryRun: --dry-run prints every step of each OS's plan and does nothing.
func TestServiceDryRun(t *testing.T) {
	t.Setenv("ProgramData", `C:\ProgramData`)
	installed := t.TempDir() // a --root holding an installed unit, for uninstall
	os.MkdirAll(filepath.Join(installed, "etc/systemd/system"), 0o755)
	os.WriteFile(filepath.Join(installed, unitPath), []byte("[Unit]\n"), 0o644)
	tests := []serviceCase{
		{"linux install", "linux", true, serviceOpts{binary: "/opt/patchgate/patchgate-agent"}, `would: create directory /etc/patchgate-agent (0750)
would: write /etc/patchgate-agent/agent.yaml (0640), unless it exists
would: create directory /var/lib/patchgate-agent (0700)
would: write /etc/systemd/system/patchgate-agent.service (0644)
would: run systemctl daemon-reload
would: run systemctl enable patchgate-agent.service
next: fill in /etc/patchgate-agent/agent.yaml and the token, then: systemctl start patchgate-agent
`},
		{"linux install into a tree", "linux", true, serviceOpts{root: "/mnt/img", binary: "/usr/bin/patchgate-agent"}, `would: create directory /mnt/img/etc/patchgate-agent (0750)
would: write /mnt/img/etc/patchgate-agent/agent.yaml (0640), unless it exists
would: create directory /mnt/img/var/lib/patchgate-agent (0700)
would: write /mnt/img/etc/systemd/system/patchgate-agent.service (0644)
would: run systemctl --root=/mnt/img enable patchgate-agent.service
next: fill in /mnt/img/etc/patchgate-agent/agent.yaml and the token, then: systemctl start patchgate-agent
`},
		{"linux uninstall", "linux", false, serviceOpts{root: installed}, `would: run systemctl --root=` + installed + ` disable patchgate-agent.service
would: remove ` + installed + `/etc/systemd/system/patchgate-agent.service
next: ` + installed + `/etc/patchgate-agent and ` + installed + `/var/lib/patchgate-agent are kept; remove them by hand if the agent is gone for good
`},
		{"windows install", "windows", true, serviceOpts{binary: `C:\Program Files\Patchgate\patchgate-agent.exe`}, `would: create directory C:\ProgramData\Patchgate, owned by Administrators, only SYSTEM and Administrators may use it
would: register the service patchgate-agent: "C:\\Program Files\\Patchgate\\patchgate-agent.exe" --log-file C:\ProgramData\Patchgate\agent.log (automatic start, delayed; restart 30s after a failure)
next: put agent.yaml and the token in C:\ProgramData\Patchgate (see agent/README.md), then: sc.exe start patchgate-agent
`},
		{"windows uninstall", "windows", false, serviceOpts{}, `would: stop and delete the service patchgate-agent
next: C:\ProgramData\Patchgate is kept; remove it by hand if the agent is gone for good
`},
		{"darwin install", "darwin", true, serviceOpts{binary: "/usr/local/bin/patchgate-agent"}, `would: create directory /Library/Application Support/Patchgate (0750)
would: write /Library/LaunchDaemons/com.patchgate.agent.plist (0644)
next: put agent.yaml and the token in /Library/Application Support/Patchgate (see agent/README.md), then: launchctl bootstrap system /Library/LaunchDaemons/com.patchgate.agent.plist (launchd loads it at every boot)
`},
		{"darwin uninstall", "darwin", false, serviceOpts{}, `would: launchctl bootout system/com.patchgate.agent (if loaded)
would: remove /Library/LaunchDaemons/com.patchgate.agent.plist
next: /Library/Application Support/Patchgate is kept; remove it by hand if the agent is gone for good
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.dryRun = true
			var out strings.Builder
			if err := doService(context.Background(), &out, tc.goos, tc.install, tc.o); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(installed, unitPath)); err != nil {
		t.Errorf("a dry-run uninstall removed the unit: %v", err)
	}
}

// TestServiceRefusesBadInput: each mistake is an error naming the flag or file.
func TestServiceRefusesBadInput(t *testing.T) {
	tests := []serviceCase{
		{"relative binary", "linux", true, serviceOpts{binary: "bin/patchgate-agent"}, `--binary "bin/patchgate-agent": not an absolute path`},
		{"binary with a systemd specifier", "linux", true, serviceOpts{binary: "/opt/100%/patchgate-agent"}, `character '%' at byte 8 is not allowed`},
		{"binary with a newline", "darwin", true, serviceOpts{binary: "/opt/a\nb"}, `character '\n' at byte 6`},
		{"windows binary without a drive", "windows", true, serviceOpts{binary: `\patchgate-agent.exe`}, "not an absolute path"},
		{"relative root", "linux", true, serviceOpts{root: "img", binary: "/usr/bin/patchgate-agent"}, `--root "img": not an absolute path`},
		{"root on windows", "windows", true, serviceOpts{root: "/mnt", binary: `C:\pg.exe`}, "--root: not supported on Windows"},
		{"uninstall what is not installed", "linux", false, serviceOpts{root: t.TempDir()}, "not installed by `service install`"},
		{"another OS", "plan9", true, serviceOpts{binary: "/bin/pg"}, "no service manager support on plan9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.dryRun = true
			err := doService(context.Background(), new(strings.Builder), tc.goos, tc.install, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "service ") {
				t.Errorf("err = %v, want one starting with the operation and containing %q", err, tc.want)
			}
		})
	}
}

// TestServiceInstallIntoRoot: `service install --root DIR` writes the unit (pointing
// at --binary), the sample config and the state directory with their modes and enables
// the unit with systemctl --root; systemd-analyze verifies the unit; a filled-in config
// survives a second install; uninstall removes the unit and its enablement, not the
// config.
func TestServiceInstallIntoRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd units are Linux's")
	}
	for _, p := range []string{"systemctl", "systemd-analyze"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's systemd package)", p)
		}
	}
	root := t.TempDir()
	bin := filepath.Join(root, "usr/bin/patchgate-agent")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	run := func(args ...string) string {
		t.Helper()
		cmd := serviceCommand()
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("service %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	out := run("install", "--root", root, "--binary", bin)
	if !strings.Contains(out, "done: run systemctl --root="+root+" enable patchgate-agent.service") {
		t.Errorf("install said:\n%s", out)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{unitPath, 0o644}, {"/etc/patchgate-agent", 0o750 | os.ModeDir}, {"/etc/patchgate-agent/agent.yaml", 0o640}, {"/var/lib/patchgate-agent", 0o700 | os.ModeDir},
	} {
		if fi, err := os.Stat(filepath.Join(root, f.path)); err != nil || fi.Mode() != f.mode {
			t.Errorf("%s: %v %v, want mode %v", f.path, fi, err, f.mode)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(root, unitPath))
	if !strings.Contains(string(unit), "\nExecStart="+bin+" --config /etc/patchgate-agent/agent.yaml\n") {
		t.Errorf("unit's ExecStart does not run %s:\n%s", bin, unit)
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", unitName)
	if dst, err := os.Readlink(wants); err != nil || dst != unitPath {
		t.Errorf("enablement link %s -> %q, %v; want %s", wants, dst, err, unitPath)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(root, unitPath)).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	cfg := filepath.Join(root, "etc/patchgate-agent/agent.yaml")
	os.WriteFile(cfg, []byte("appliance: https://10.0.0.2:8443\n"), 0o640)
	run("install", "--root", root, "--binary", bin)
	if b, _ := os.ReadFile(cfg); string(b) != "appliance: https://10.0.0.2:8443\n" {
		t.Errorf("a second install replaced the filled-in config with:\n%s", b)
	}

	run("uninstall", "--root", root)
	for _, p := range []string{filepath.Join(root, unitPath), wants} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after uninstall", p)
		}
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Errorf("uninstall removed the config: %v", err)
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// run executes the root command with args and returns stdout, stderr and the exit code
// main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	code := 0
	if err := cmd.Execute(); err != nil {
		errb.WriteString(err.Error())
		code = exitCode(err)
	}
	return out.String(), errb.String(), code
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log:\n  level: loud\nadmin:\n  listn: 127.0.0.1:1\n"), 0o600)
	// Every file the config names must exist: allowlists (beside the config), TUF roots
	// and the admin certificate and key.
	missing := filepath.Join(dir, "missing.yaml")
	os.WriteFile(filepath.Join(dir, "here.txt"), []byte("example.com\n"), 0o600)
	os.WriteFile(missing, []byte(`resolver:
  lists:
    - name: here
      files: [here.txt]
    - name: gone
      files:
        - here.txt
        - gone.txt
tuf:
  repositories:
    - name: vendor
      metadata_url: https://tuf.example/metadata
      targets_url: https://tuf.example/targets
      root: /nonexistent/vendor-root.json
auth:
  tls:
    mode: files
    cert_file: /nonexistent/admin.crt
    key_file: `+dir+`
`), 0o600)
	tests := []struct {
		name     string
		file     string
		wantCode int
		wantErr  []string
	}{
		{"shipped default", "../../configs/patchgate.yaml", 0, []string{"patchgate.yaml: ok"}},
		{"dev", "../../configs/dev.yaml", 0, []string{"dev.yaml: ok"}},
		{"bad", bad, 1, []string{"bad.yaml:2: log.level: must be one of", "bad.yaml:4: admin.listn: unknown key", "is not valid"}},
		{"missing", filepath.Join(dir, "nope.yaml"), 1, []string{"nope.yaml: no such file"}},
		{"files named but missing", missing, 1, []string{
			"missing.yaml:8: resolver.lists[1].files[1]: file " + filepath.Join(dir, "gone.txt") + " does not exist",
			"missing.yaml:14: tuf.repositories[0].root: file /nonexistent/vendor-root.json does not exist",
			"missing.yaml:18: auth.tls.cert_file: file /nonexistent/admin.crt does not exist",
			"missing.yaml:19: auth.tls.key_file: file " + dir + ": not a regular file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, "check-config", "--config", tt.file)
			if code != tt.wantCode {
				t.Errorf("check-config %s exit %d, want %d; stderr:\n%s", tt.file, code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("check-config %s stderr lacks %q:\n%s", tt.file, w, stderr)
				}
			}
		})
	}
}

// TestConfigFromEnvironment: with no --config, every command reads $PATCHGATE_CONFIG,
// else /etc/patchgate/patchgate.yaml; --config still wins.
func TestConfigFromEnvironment(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"environment", "../../configs/dev.yaml", nil, "dev.yaml: ok"},
		{"flag over environment", "../../configs/dev.yaml", []string{"--config", "../../configs/patchgate.yaml"}, "patchgate.yaml: ok"},
		{"neither", "", nil, "/etc/patchgate/patchgate.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATCHGATE_CONFIG", tt.env)
			stdout, stderr, _ := run(t, append([]string{"check-config"}, tt.args...)...)
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("check-config %v with PATCHGATE_CONFIG=%q: %q, want it to name %q", tt.args, tt.env, stdout+stderr, tt.want)
			}
		})
	}
}

func TestCheckConfigDoesNotWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte("state:\n  dir: "+filepath.Join(dir, "state")+"\n"), 0o600)
	if _, stderr, code := run(t, "check-config", "--config", cfg); code != 0 {
		t.Fatalf("check-config exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("check-config created the state directory (stat err %v)", err)
	}
}

func TestServeRefusesBadConfigBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte("state:\n  dir: "+filepath.Join(dir, "state")+"\nadmin:\n  listen: nowhere\n"), 0o600)
	_, stderr, code := run(t, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "p.yaml:4: admin.listen: want host:port") {
		t.Fatalf("serve with a bad config: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("serve wrote the state directory for a bad config")
	}
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != 0 || !strings.Contains(out, "patchgate "+version) || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version = %q (exit %d)", out, code)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/tuf"
)

// TestTUFAddInstructions publishes a target with --instructions and --custom and reads
// both back from the staged metadata.
func TestTUFAddInstructions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	tmp := t.TempDir()
	file := filepath.Join(tmp, "tool_1.1.deb")
	os.WriteFile(file, []byte("package"), 0o600)
	good := filepath.Join(tmp, "install.json")
	os.WriteFile(good, []byte(`{"install": {"linux": {"command": ["/usr/bin/dpkg", "-i", "{file}"], "reboot": true}}}`), 0o600)
	if out, errOut, code := run(t, "tuf", "init", "--dir", dir); code != 0 {
		t.Fatalf("tuf init: %d %s %s", code, out, errOut)
	}
	out, errOut, code := run(t, "tuf", "add", file, "--path", "pkgs/tool_1.1.deb", "--custom", `{"model":"x"}`, "--instructions", good, "--dir", dir)
	if code != 0 || !strings.Contains(out, "staged pkgs/tool_1.1.deb") {
		t.Fatalf("tuf add --instructions: code %d, output %q %q", code, out, errOut)
	}
	p, err := tuf.OpenPublisher(dir, tuf.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	staged, err := p.Staged()
	if err != nil || len(staged) != 1 {
		t.Fatalf("Staged = %+v, %v; want the one target", staged, err)
	}
	in, err := agentapi.ParseInstructions(staged[0].Custom)
	if err != nil {
		t.Fatalf("instructions of the staged target: %v", err)
	}
	if s, err := in.For("linux"); err != nil || !s.Reboot || s.Command[0] != "/usr/bin/dpkg" {
		t.Errorf("staged linux step = %+v, %v", s, err)
	}
	if !strings.Contains(string(staged[0].Custom), `"model": "x"`) {
		t.Errorf("the --custom key is gone: %s", staged[0].Custom)
	}
	// A refused file stages nothing.
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, []byte(`{"install": {"linux": {"command": ["dpkg"]}}}`), 0o600)
	if _, errOut, code := run(t, "tuf", "add", file, "--path", "pkgs/b.deb", "--instructions", bad, "--dir", dir); code != 1 || !strings.Contains(errOut, "command[0]") {
		t.Errorf("tuf add with bad instructions: code %d, stderr %q; want 1 naming the field", code, errOut)
	}
	if staged, _ := p.Staged(); len(staged) != 1 {
		t.Errorf("staged after a refused add: %d targets, want 1", len(staged))
	}
}

func TestWithInstructionsFile(t *testing.T) {
	tests := []struct {
		name    string
		custom  string
		content string // "" : no such file
		want    string
	}{
		{"relative program", "", `{"install": {"linux": {"command": ["dpkg", "-i", "{file}"]}}}`,
			"patchgate.install.linux.command[0]: must be the program's absolute path on linux"},
		{"unknown OS", "", `{"install": {"plan9": {"command": ["/bin/x"]}}}`, `unknown OS "plan9"`},
		{"unknown field", "", `{"install": {"linux": {"command": ["/bin/x"]}}, "shell": true}`, `unknown field "shell"`},
		{"not JSON", "", `{"install": {}} trailing`, "not valid JSON"},
		{"missing file", "", "", "no such file"},
		{"custom has the key", `{"patchgate": 1}`, `{"install": {"linux": {"command": ["/bin/x"]}}}`, `already has a "patchgate" key`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "install.json")
			if tc.content != "" {
				os.WriteFile(path, []byte(tc.content), 0o600)
			}
			var custom []byte
			if tc.custom != "" {
				custom = []byte(tc.custom)
			}
			if _, err := withInstructions(custom, path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("withInstructions = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/tuf"
)

func TestTUFAddInstructions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	tmp := t.TempDir()
	file := filepath.Join(tmp, "tool_1.1.deb")
	os.WriteFile(file, []byte("package"), 0o600)
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	good := write("good.json", `{"install": {"linux": {"command": ["/usr/bin/dpkg", "-i", "{file}"], "reboot": true}}}`)
	relative := write("relative.json", `{"install": {"linux": {"command": ["dpkg", "-i", "{file}"]}}}`)
	unknownOS := write("os.json", `{"install": {"plan9": {"command": ["/bin/x"]}}}`)
	junk := write("junk.json", `{"install": {}} trailing`)
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"init", []string{"tuf", "init", "--dir", dir}, 0, "1.root.json"},
		{"relative program", []string{"tuf", "add", file, "--path", "pkgs/a.deb", "--instructions", relative, "--dir", dir}, 1,
			"patchgate.install.linux.command[0]: must be the program's absolute path on linux"},
		{"unknown OS", []string{"tuf", "add", file, "--path", "pkgs/a.deb", "--instructions", unknownOS, "--dir", dir}, 1, `unknown OS "plan9"`},
		{"not JSON", []string{"tuf", "add", file, "--path", "pkgs/a.deb", "--instructions", junk, "--dir", dir}, 1, "not valid JSON"},
		{"missing file", []string{"tuf", "add", file, "--path", "pkgs/a.deb", "--instructions", filepath.Join(tmp, "nope.json"), "--dir", dir}, 1, "no such file"},
		{"custom has the key", []string{"tuf", "add", file, "--path", "pkgs/a.deb", "--custom", `{"patchgate": 1}`, "--instructions", good, "--dir", dir}, 1, `already has a "patchgate" key`},
		{"good", []string{"tuf", "add", file, "--path", "pkgs/tool_1.1.deb", "--custom", `{"model":"x"}`, "--instructions", good, "--dir", dir}, 0, "staged pkgs/tool_1.1.deb"},
	}
	for _, st := range steps {
		out, errOut, code := run(t, st.args...)
		if code != st.wantCode || !strings.Contains(out+errOut, st.want) {
			t.Errorf("%s: code %d, output %q %q; want code %d and %q", st.name, code, out, errOut, st.wantCode, st.want)
		}
	}
	p, err := tuf.OpenPublisher(dir, tuf.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	staged, err := p.Staged()
	if err != nil || len(staged) != 1 {
		t.Fatalf("Staged = %+v, %v; want only the good target", staged, err)
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
}

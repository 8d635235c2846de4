package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTUFCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	file := filepath.Join(t.TempDir(), "fw.bin")
	os.WriteFile(file, []byte("firmware"), 0o600)
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"init", []string{"tuf", "init", "--dir", dir}, 0, "1.root.json"},
		{"add", []string{"tuf", "add", file, "--path", "printers/fw.bin", "--custom", `{"model":"x"}`, "--dir", dir}, 0, "staged printers/fw.bin: 8 bytes"},
		{"add without path", []string{"tuf", "add", file, "--dir", dir}, 1, `"path" not set`},
		{"publish", []string{"tuf", "publish", "--dir", dir}, 0, "published targets v2"},
		{"remove unknown", []string{"tuf", "remove", "nope.bin", "--dir", dir}, 1, "no such target"},
		{"rotate", []string{"tuf", "rotate", "--role", "snapshot", "--dir", dir}, 0, "rotated snapshot"},
		{"rotate bad role", []string{"tuf", "rotate", "--role", "mirror", "--dir", dir}, 1, "want one of"},
		{"publish elsewhere", []string{"tuf", "publish", "--dir", t.TempDir()}, 1, "patchgate tuf init"},
	}
	for _, st := range steps {
		out, errOut, code := run(t, st.args...)
		if code != st.wantCode || !strings.Contains(out+errOut, st.want) {
			t.Errorf("%s: code %d, output %q %q; want code %d and %q", st.name, code, out, errOut, st.wantCode, st.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "repository", "metadata", "2.root.json")); err != nil {
		t.Errorf("rotate wrote no 2.root.json: %v", err)
	}
}

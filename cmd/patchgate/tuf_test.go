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

func TestTUFRootCeremonyCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	var keys []string
	for range 3 {
		keys = append(keys, filepath.Join(t.TempDir(), "root.pem")) // each on "another machine"
	}
	next := filepath.Join(t.TempDir(), "next.json")
	v1 := filepath.Join(dir, "root-pending.json")
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"keygen a", []string{"tuf", "root", "keygen", "--out", keys[0]}, 0, "keep it offline"},
		{"keygen b", []string{"tuf", "root", "keygen", "--out", keys[1]}, 0, "root key"},
		{"keygen c", []string{"tuf", "root", "keygen", "--out", keys[2]}, 0, "root key"},
		{"keygen over a key", []string{"tuf", "root", "keygen", "--out", keys[2]}, 1, "already exists"},
		{"init", []string{"tuf", "init", "--dir", dir, "--root-pub", keys[0] + ".pub.json", "--root-pub", keys[1] + ".pub.json",
			"--root-pub", keys[2] + ".pub.json", "--root-threshold", "2"}, 0, "awaits its signatures"},
		{"sign v1 a", []string{"tuf", "root", "sign", "--key", keys[0], v1}, 0, "signed"},
		{"import v1 short", []string{"tuf", "root", "import", "--dir", dir, v1}, 1, "threshold not met"},
		{"sign v1 b", []string{"tuf", "root", "sign", "--key", keys[1], v1}, 0, "signed"},
		{"import v1", []string{"tuf", "root", "import", "--dir", dir, v1}, 0, "root version 1 published"},
		{"export rotate", []string{"tuf", "root", "export", "--dir", dir, "--rotate-online", "--out", next}, 0, "next root written"},
		{"sign v2 c", []string{"tuf", "root", "sign", "--key", keys[2], next}, 0, "signed"},
		{"sign v2 b", []string{"tuf", "root", "sign", "--key", keys[1], next}, 0, "signed"},
		{"import v2", []string{"tuf", "root", "import", "--dir", dir, next}, 0, "root version 2 published"},
		{"sign garbage", []string{"tuf", "root", "sign", "--key", keys[0], keys[0] + ".pub.json"}, 1, "not root metadata"},
	}
	for _, st := range steps {
		out, errOut, code := run(t, st.args...)
		if code != st.wantCode || !strings.Contains(out+errOut, st.want) {
			t.Fatalf("%s: code %d, output %q %q; want code %d and %q", st.name, code, out, errOut, st.wantCode, st.want)
		}
	}
	if rk, _ := filepath.Glob(filepath.Join(dir, "root-keys", "*")); len(rk) != 0 {
		t.Errorf("root keys on the appliance: %v", rk)
	}
}

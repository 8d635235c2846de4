package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestImportBody(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kev := write("kev.json", `{"vulnerabilities":[]}`)
	csaf := write("csaf/zebra.json", `{"document":{}}`)
	write("csaf/zebra.json.asc", "sig")
	write("csaf/zebra.json.sha256", "sum")
	tests := []struct {
		name, path, want string
		zipped           []string
	}{
		{"a plain file as it is", kev, "kev.json", nil},
		{"a CSAF document with its signature, zipped", csaf, "zebra.json.zip", []string{"zebra.json", "zebra.json.asc", "zebra.json.sha256"}},
		{"a directory, zipped", filepath.Join(dir, "csaf"), "csaf.zip", []string{"zebra.json", "zebra.json.asc", "zebra.json.sha256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, name, err := importBody(tt.path)
			if err != nil || name != tt.want {
				t.Fatalf("importBody(%s) = %q, %v; want %q", tt.path, name, err, tt.want)
			}
			if tt.zipped == nil {
				return
			}
			zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range zr.File {
				names = append(names, f.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tt.zipped) {
				t.Errorf("zip holds %v, want %v", names, tt.zipped)
			}
		})
	}
	if _, _, err := importBody(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("importBody of a missing file: no error")
	}
}

// Package goldentest compares a test's output with a golden file, or rewrites the file
// when the test runs with its package's -update flag. Each test package keeps its own
// flag and passes its value, so no two packages in one test binary register the same
// flag name.
package goldentest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Check compares got with the file at path; with update it first writes got there
// (making the directory). A missing file fails the test with a hint to run -update; a
// difference is reported as a diff (-want +got) under path.
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// Each runs a subtest for every file matching pattern (failing the test when none
// does), named after the file without its extension, and checks what got makes of the
// file against the golden file beside it: the same name with ext (".golden") in place
// of its own extension.
func Each(t *testing.T, pattern, ext string, update bool, got func(t *testing.T, path string) []byte) {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		t.Fatalf("no %s", pattern)
	}
	for _, f := range files {
		base := strings.TrimSuffix(f, filepath.Ext(f))
		t.Run(filepath.Base(base), func(t *testing.T) {
			Check(t, base+ext, got(t, f), update)
		})
	}
}

package tuf_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// FuzzStoredState feeds arbitrary bytes to a Mirror as its stored verified
// state (STATE/verified.json, read at start). Invariant: no panic, and a
// state is only ever used if it verifies from the pinned root: any target
// the mirror then vouches for is one the genuine repository lists with the
// same length.
func FuzzStoredState(f *testing.F) {
	repo := tuftest.New(f)
	repo.AddTarget("a.bin", []byte("genuine"))
	repo.Publish()
	seedDir := f.TempDir()
	m := newFuzzMirror(f, repo, seedDir)
	if err := m.Refresh(context.Background()); err != nil {
		f.Fatal(err)
	}
	genuine, err := os.ReadFile(filepath.Join(seedDir, "verified.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(bytes.Replace(genuine, []byte(`"timestamp":"`), []byte(`"timestamp":"AAAA`), 1))
	f.Add([]byte(`{"roots":[""],"roles":[{"name":"targets","parent":"root","data":"e30="}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, stored []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "verified.json"), stored, 0o600); err != nil {
			t.Fatal(err)
		}
		m := newFuzzMirror(t, repo, dir)
		for _, ti := range m.Targets() {
			if ti.Path != "a.bin" || ti.Length != int64(len("genuine")) {
				t.Fatalf("stored state vouches for %+v, which the repository never listed", ti)
			}
		}
	})
}

func newFuzzMirror(tb testing.TB, repo *tuftest.Repo, dir string) *tuf.Mirror {
	tb.Helper()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "fuzz", MetadataURL: repo.MetadataURL(), TargetsURL: repo.TargetsURL(),
		TrustedRoot: repo.Root(), StateDir: dir}, tuf.Options{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

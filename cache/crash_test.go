package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestCrashChild is the child process of TestCrashMidDownload: it is
// skipped unless started by it. It downloads big.bin until killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("PG_CRASH_DIR")
	if dir == "" {
		t.Skip("child of TestCrashMidDownload only")
	}
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: os.Getenv("PG_CRASH_META"), TargetsURL: os.Getenv("PG_CRASH_TARGETS"),
		TrustedRoot: root, StateDir: filepath.Join(dir, "tuf")}, tuf.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Dir: filepath.Join(dir, "cache")}, []*tuf.Mirror{m}, cache.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c.Get(context.Background(), "demo", "big.bin") // killed in here
	t.Fatal("the download was expected to hang until the parent kills this process")
}

func TestCrashMidDownload(t *testing.T) {
	data := bytes.Repeat([]byte("crash-safe "), 400_000) // 4.4 MB
	repo := tuftest.New(t)
	repo.AddTarget("big.bin", data)
	repo.Publish()
	var sent atomic.Int64
	var hang atomic.Bool
	hang.Store(true)
	for _, p := range repo.TargetPaths("targets", "big.bin") {
		repo.Handle(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hang.Load() {
				http.ServeContent(w, r, "", zeroTime, bytes.NewReader(data))
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:1<<20])
			w.(http.Flusher).Flush()
			sent.Store(1 << 20)
			<-r.Context().Done() // until the child dies
		}))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), repo.Root(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PG_CRASH_DIR="+dir, "PG_CRASH_META="+repo.MetadataURL(), "PG_CRASH_TARGETS="+repo.TargetsURL())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	tmpDir := filepath.Join(dir, "cache", "tmp")
	waitFor(t, func() bool { // the child has written part of the target
		ents, _ := os.ReadDir(tmpDir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if ents, _ := os.ReadDir(tmpDir); len(ents) == 0 {
		t.Fatalf("no partial download left by the killed child; output:\n%s", out.String())
	}

	// Restart over the same directories, upstream healthy again.
	hang.Store(false)
	e := &env{repo: repo, tufDir: filepath.Join(dir, "tuf"), dir: filepath.Join(dir, "cache")}
	e.cfg = cache.Config{Dir: e.dir}
	e.start(t)
	if ents, _ := os.ReadDir(tmpDir); len(ents) != 0 {
		t.Errorf("%d temp files left after restart, want 0", len(ents))
	}
	if st := e.cache.Status(); st.Objects != 0 {
		t.Errorf("%d objects after a crash mid-download, want 0", st.Objects)
	}
	e.refresh(t)
	resp, body := e.get(t, "/repos/demo/targets/big.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("after restart: status %d, %d bytes, want the whole verified target", resp.StatusCode, len(body))
	}
}

package shaper

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf"
)

// TestShaperServerChild is the server process of the benchmarks; it is skipped unless
// a benchmark starts it. It serves the real cache over a mirror of the parent's TUF
// repository, through a shaper set by PG_SHAPER_MODE (off: no shaper; count: a shaper
// without caps; cap: PG_SHAPER_SITE and PG_SHAPER_CLIENT bytes per second), prints
// its address and serves until killed.
func TestShaperServerChild(t *testing.T) {
	dir := os.Getenv("PG_SHAPER_DIR")
	if dir == "" {
		t.Skip("server process of the shaper benchmarks only")
	}
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: os.Getenv("PG_SHAPER_META"), TargetsURL: os.Getenv("PG_SHAPER_TARGETS"),
		TrustedRoot: root, StateDir: filepath.Join(dir, "tuf")}, tuf.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Dir: filepath.Join(dir, "store")}, []*tuf.Mirror{m}, cache.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := &cache.Handler{Cache: c}
	mode := os.Getenv("PG_SHAPER_MODE")
	if mode != "off" {
		site, _ := strconv.ParseInt(os.Getenv("PG_SHAPER_SITE"), 10, 64)
		client, _ := strconv.ParseInt(os.Getenv("PG_SHAPER_CLIENT"), 10, 64)
		s, err := cache.NewShaper(cache.ShaperConfig{Site: site, Client: client}, cache.ShaperOptions{Logger: log, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		h.Shaper = s
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/repos/", h)
	mux.HandleFunc("/refresh", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Refresh(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	if prof := os.Getenv("PG_SHAPER_CPUPROFILE"); prof != "" {
		// Profile the server until the benchmark stops it (SIGTERM).
		f, err := os.Create(fmt.Sprintf("%s.%s.%d", prof, mode, os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() { <-sig; pprof.StopCPUProfile(); f.Close(); os.Exit(0) }()
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	http.Serve(ln, mux)
}

// server is a running server process.
type server struct {
	url string // of the benchmark's target
	pid int
}

// startServer re-executes this test binary as the server, in mode, with caps in
// bytes per second (0: none), and warms the cache with one full download.
func startServer(b *testing.B, u *upstream, mode string, site, client int64) *server {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), u.repo.Root(), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestShaperServerChild$")
	cmd.Env = append(os.Environ(), "PG_SHAPER_DIR="+dir, "PG_SHAPER_META="+u.repo.MetadataURL(), "PG_SHAPER_TARGETS="+u.repo.TargetsURL(),
		"PG_SHAPER_MODE="+mode, "PG_SHAPER_SITE="+strconv.FormatInt(site, 10), "PG_SHAPER_CLIENT="+strconv.FormatInt(client, 10), "GOMAXPROCS=2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		b.Fatal("server did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	resp, err := http.Post("http://"+addr+"/refresh", "", nil)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("refresh: %v %v", resp, err)
	}
	resp.Body.Close()
	s := &server{url: "http://" + addr + "/repos/demo/targets/" + targetPath, pid: cmd.Process.Pid}
	// The first download fetches from upstream into the cache (not measured); with a
	// binding cap it would take long, so it reads only the first byte and waits for
	// the cache to complete the object in the background.
	if _, err := get(http.DefaultClient, s.url, 1); err != nil {
		b.Fatal(err)
	}
	return s
}

// cpuSeconds is the user+system CPU time of pid, from /proc.
func cpuSeconds(b *testing.B, pid int) float64 {
	const hz = 100 // USER_HZ on Linux
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("needs /proc to measure CPU time: %v", err)
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / hz
}

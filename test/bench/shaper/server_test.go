package shaper

import (
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/test/bench/cacheproc"
)

// child is the server process of these benchmarks.
var child = cacheproc.Kind{Bench: "shaper", Test: "TestShaperServerChild", Env: "PG_SHAPER"}

// TestShaperServerChild is the server process of the benchmarks; it is skipped unless
// a benchmark starts it. It serves the real cache over a mirror of the parent's TUF
// repository, through a shaper set by PG_SHAPER_MODE (off: no shaper; count: a shaper
// without caps; cap: PG_SHAPER_SITE and PG_SHAPER_CLIENT bytes per second), prints
// its address and serves until killed.
func TestShaperServerChild(t *testing.T) {
	child.Serve(t, func(c *cacheproc.Child) error {
		mode := os.Getenv("PG_SHAPER_MODE")
		c.ProfileTag = mode
		if mode == "off" {
			return nil
		}
		site, _ := strconv.ParseInt(os.Getenv("PG_SHAPER_SITE"), 10, 64)
		client, _ := strconv.ParseInt(os.Getenv("PG_SHAPER_CLIENT"), 10, 64)
		s, err := cache.NewShaper(cache.ShaperConfig{Site: site, Client: client}, cache.ShaperOptions{Logger: c.Logger, Registerer: c.Registry})
		if err != nil {
			return err
		}
		c.Handler.Shaper = s
		return nil
	})
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
	addr, cmd := child.Start(b, dir, u.repo, "PG_SHAPER_MODE="+mode, "PG_SHAPER_SITE="+strconv.FormatInt(site, 10),
		"PG_SHAPER_CLIENT="+strconv.FormatInt(client, 10), "GOMAXPROCS=2")
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
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
	s, err := cacheproc.CPUSeconds(pid)
	if err != nil {
		b.Skipf("needs /proc to measure CPU time: %v", err)
	}
	return s
}

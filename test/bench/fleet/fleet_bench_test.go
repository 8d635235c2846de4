package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/bench/cacheproc"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

const (
	targetPath = "release/fw-2.0.bin"
	targetSize = 16 << 20
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/patchgate once per benchmark process.
func binary(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "patchgate-fleet-bench-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "patchgate")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/patchgate/patchgate/cmd/patchgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback address nobody listens on right now.
func freePort(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// appliance is one `patchgate serve` process.
type appliance struct {
	cmd         *exec.Cmd
	admin, dist string
}

func start(b *testing.B, dir, name, extra string) *appliance {
	b.Helper()
	a := &appliance{admin: freePort(b), dist: freePort(b)}
	cfg := fmt.Sprintf(`state: {dir: %q}
admin: {listen: %q}
distribution: {listen: %q}
resolver: {enabled: false}
inventory:
  passive: {enabled: false}
  scan: {enabled: false}
rollout: {gate: open}
auth:
  tls: {mode: "off"}
  loopback_viewer: true
%s`, filepath.Join(dir, name), a.admin, a.dist, extra)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	a.cmd = exec.Command(binary(b), "serve", "--config", path)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
		logf.Close()
	})
	return a
}

// waitFor polls url until it answers 200, for at most d.
func waitFor(b *testing.B, url string, d time.Duration) {
	b.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer 200 within %s (last: %v)", url, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metricSum adds up the samples of name whose labels contain match on a /metrics page.
func metricSum(b *testing.B, url, name, match string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

func BenchmarkFleet(b *testing.B) {
	if os.Getenv("PG_BENCH_FLEET") == "" {
		b.Skip("starts up to 51 appliance processes: run it on its own with PG_BENCH_FLEET=1 (see the package doc)")
	}
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			for range b.N {
				runFleet(b, n)
			}
		})
	}
}

func runFleet(b *testing.B, n int) {
	dir := b.TempDir()
	up := tuftest.New(b)
	content := tuftest.NewGenerated(targetSize, 21)
	up.AddTargetContent("targets", targetPath, content, nil)
	up.Publish()
	h := sha256.New()
	io.Copy(h, content.Open())
	want := h.Sum(nil)
	root := filepath.Join(dir, "roots", "up.root.json")
	os.MkdirAll(filepath.Dir(root), 0o700)
	if err := os.WriteFile(root, up.Root(), 0o600); err != nil {
		b.Fatal(err)
	}

	parent := start(b, dir, "parent", fmt.Sprintf(`tuf:
  repositories:
    - name: up
      metadata_url: %s
      targets_url: %s
      root: %s
`, up.MetadataURL(), up.TargetsURL(), root))
	waitFor(b, "http://"+parent.dist+"/repos/up/metadata/timestamp.json", 2*time.Minute)

	cpuStart, err := cacheproc.CPUSeconds(parent.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	tStart := time.Now()
	children := make([]*appliance, n)
	for i := range children {
		children[i] = start(b, dir, fmt.Sprintf("child%03d", i), fmt.Sprintf(`site: child%03d
parent:
  url: http://%s
  repositories: [up]
  roots: %s
  refresh_interval: 10s
`, i, parent.dist, filepath.Dir(root)))
	}
	// Every child up with the parent's metadata verified: from here on, only the
	// release moves.
	var ready sync.WaitGroup
	for _, c := range children {
		ready.Add(1)
		go func() {
			defer ready.Done()
			waitFor(b, "http://"+c.dist+"/repos/up/metadata/timestamp.json", 10*time.Minute)
		}()
	}
	ready.Wait()
	startup := time.Since(tStart)
	cpu0, err := cacheproc.CPUSeconds(parent.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fetchRelease(c, want)
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	cpu1, err := cacheproc.CPUSeconds(parent.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	upstream := 0
	for _, p := range up.Requests() {
		if strings.HasSuffix(p, "fw-2.0.bin") {
			upstream++
		}
	}
	served := metricSum(b, "http://"+parent.admin+"/metrics", "patchgate_cache_requests_total", `code="200",kind="target",repo="up"`)
	b.ReportMetric(elapsed.Seconds(), "s_all_hold")
	b.ReportMetric(startup.Seconds(), "s_children_up")
	b.ReportMetric((cpu0-cpuStart)/float64(n)*1000, "parent_cpu_ms/child_start")
	b.ReportMetric((cpu1-cpu0)/float64(n)*1000, "parent_cpu_ms/child")
	b.ReportMetric(float64(upstream), "upstream_fetches")
	b.ReportMetric(served, "parent_serves")
	b.Logf("children=%d: up with verified metadata after %s (parent CPU %.2fs); then all hold the release after %s; parent CPU %.2fs (%.0f ms/child); upstream fetches %d; parent answered the target 200 %.0f times",
		n, startup.Round(time.Millisecond), cpu0-cpuStart, elapsed.Round(time.Millisecond), cpu1-cpu0, (cpu1-cpu0)/float64(n)*1000, upstream, served)
}

// fetchRelease asks child for the release as a device would until it answers with
// the whole target (the child's mirror first has to verify the parent's metadata),
// and checks the bytes.
func fetchRelease(c *appliance, want []byte) error {
	url := "http://" + c.dist + "/repos/up/targets/" + targetPath
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			h := sha256.New()
			_, cerr := io.Copy(h, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && cerr == nil {
				cancel()
				if !bytes.Equal(h.Sum(nil), want) {
					return fmt.Errorf("%s: wrong bytes", url)
				}
				return nil
			}
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no release within 10m (last: %v)", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

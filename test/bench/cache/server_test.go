package cache

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/test/bench/cacheproc"
)

// child is the Patchgate server process of these benchmarks.
var child = cacheproc.Kind{Bench: "cache", Test: "TestServeChild", Env: "PG_BENCH"}

// TestServeChild is the Patchgate server process of the benchmarks; it is
// skipped unless a benchmark starts it. It prints its address, then serves
// until killed.
func TestServeChild(t *testing.T) {
	child.Serve(t, func(c *cacheproc.Child) error {
		c.Mux.HandleFunc("GET /floor/{size}", floorHandler)
		// The same mux behind the Lean loop (as the appliance's distribution listener
		// has it), on a second port: /lean-addr on either port names it.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lean := &cache.Lean{Handler: func() http.Handler { return c.Mux }, Small: c.Handler.Small}
		go http.Serve(lean.Listener(ln), c.Mux)
		c.Mux.HandleFunc("GET /lean-addr", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, ln.Addr().String())
		})
		return nil
	})
}

// serverProcs is the CPUs each server may use at once: Patchgate's
// GOMAXPROCS and nginx's worker_processes, alike; PG_BENCH_PROCS sets it
// (default 2, this machine's CPUs when the benchmark was written).
func serverProcs() int {
	if n, err := strconv.Atoi(os.Getenv("PG_BENCH_PROCS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// placement is where a server process runs: procs CPUs at once (Patchgate's
// GOMAXPROCS, nginx's worker_processes) on cpus (a taskset CPU list, "" for
// wherever the kernel puts it).
type placement struct {
	procs int
	cpus  string
}

// anywhere is the placement of the benchmarks whose client shares the CPUs
// with the servers: serverProcs CPUs, unpinned.
func anywhere() placement { return placement{procs: serverProcs()} }

// server is a server process under test.
type server struct {
	name string
	base string // URL prefix of targets: base + "/" + path
	// floor is the URL prefix of the Patchgate process's floor handler:
	// floor + "/" + size.
	floor string
	// lean is the URL prefix of targets on the Patchgate process's Lean listener.
	lean string
	pids func() []int
	stop func()
}

// startPatchgate re-executes this test binary as the Patchgate server.
// Its files go in dir.
func startPatchgate(b *testing.B, dir string, u *upstream, at placement) *server {
	b.Helper()
	addr, cmd := child.StartOn(b, at.cpus, dir, u.repo, "GOMAXPROCS="+strconv.Itoa(at.procs))
	resp, err := http.Get("http://" + addr + "/lean-addr")
	if err != nil {
		b.Fatal(err)
	}
	leanAddr, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &server{
		name: "patchgate", base: "http://" + addr + "/repos/demo/targets", floor: "http://" + addr + "/floor",
		lean: "http://" + string(leanAddr) + "/repos/demo/targets",
		pids: func() []int { return []int{cmd.Process.Pid} },
		stop: func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() },
	}
}

// startNginx runs Debian's nginx as a caching reverse proxy of the upstream,
// with its files in prefix, or returns nil when nginx is not installed.
func startNginx(b *testing.B, prefix string, u *upstream, at placement) *server {
	b.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		return nil
	}
	for _, d := range []string{"cache", "tmp", "logs"} {
		os.MkdirAll(filepath.Join(prefix, d), 0o777)
	}
	port := freePort(b)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes %[5]d;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  proxy_cache_path %[2]s/cache levels=1:2 keys_zone=pg:16m max_size=4g inactive=1h use_temp_path=off;
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass %[4]s;
      proxy_http_version 1.1;
      proxy_cache pg;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 60s;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`, user, prefix, port, u.repo.URL(), at.procs)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd, err := cacheproc.Pinned(at.cpus, bin, "-p", prefix, "-c", confPath)
	if err != nil {
		b.Skip(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			b.Fatal("nginx did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &server{
		name: "nginx", base: "http://" + addr + "/targets",
		pids: func() []int { return append([]int{cmd.Process.Pid}, children(cmd.Process.Pid)...) },
		stop: func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() },
	}
}

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// children lists the child processes of pid (nginx's workers).
func children(pid int) []int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// cpuSeconds sums user+system CPU time of pids from /proc, leaving out
// those it cannot read (a process that has ended).
func cpuSeconds(pids []int) float64 {
	total := 0.0
	for _, pid := range pids {
		if s, err := cacheproc.CPUSeconds(pid); err == nil {
			total += s
		}
	}
	return total
}

// floorHandler answers /floor/SIZE (bytes) with that many zero bytes and
// the headers of a cached hit, set up front, and the body in one Write:
// the least net/http can do for such a response, to compare the cache's
// handler with (no lookup, no verification, no metrics).
func floorHandler(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("size"))
	if err != nil || n < 0 || n > 1<<20 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	body := floorBody[:n]
	h := w.Header()
	h["Content-Type"] = floorHeader["Content-Type"]
	h["X-Content-Type-Options"] = floorHeader["X-Content-Type-Options"]
	h["Etag"] = floorHeader["Etag"]
	h["Cache-Control"] = floorHeader["Cache-Control"]
	h["Accept-Ranges"] = floorHeader["Accept-Ranges"]
	h["Content-Length"] = []string{r.PathValue("size")}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

var (
	floorBody   = make([]byte, 1<<20)
	floorHeader = http.Header{
		"Content-Type":           {"application/octet-stream"},
		"X-Content-Type-Options": {"nosniff"},
		"Etag":                   {`"` + strings.Repeat("0", 64) + `"`},
		"Cache-Control":          {"no-cache"},
		"Accept-Ranges":          {"bytes"},
	}
)

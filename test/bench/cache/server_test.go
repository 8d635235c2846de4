package cache

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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf"
)

// TestServeChild is the Patchgate server process of the benchmarks; it is
// skipped unless a benchmark starts it. It prints its address, then serves
// until killed.
func TestServeChild(t *testing.T) {
	dir := os.Getenv("PG_BENCH_DIR")
	if dir == "" {
		t.Skip("server process of the cache benchmarks only")
	}
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: os.Getenv("PG_BENCH_META"), TargetsURL: os.Getenv("PG_BENCH_TARGETS"),
		TrustedRoot: root, StateDir: filepath.Join(dir, "tuf")}, tuf.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Dir: filepath.Join(dir, "store")}, []*tuf.Mirror{m}, cache.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/repos/", &cache.Handler{Cache: c})
	mux.HandleFunc("/refresh", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Refresh(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	if prof := os.Getenv("PG_BENCH_CPUPROFILE"); prof != "" {
		// Profile the server until the benchmark stops it (SIGTERM).
		f, err := os.Create(fmt.Sprintf("%s.%d", prof, os.Getpid()))
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

// server is a server process under test.
type server struct {
	name string
	base string // URL prefix of targets: base + "/" + path
	pids func() []int
	stop func()
}

// startPatchgate re-executes this test binary as the Patchgate server.
func startPatchgate(b *testing.B, u *upstream) *server {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), u.repo.Root(), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeChild$")
	cmd.Env = append(os.Environ(), "PG_BENCH_DIR="+dir, "PG_BENCH_META="+u.repo.MetadataURL(), "PG_BENCH_TARGETS="+u.repo.TargetsURL(), "GOMAXPROCS=2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		cmd.Process.Kill()
		b.Fatal("patchgate server did not start")
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
	return &server{
		name: "patchgate", base: "http://" + addr + "/repos/demo/targets",
		pids: func() []int { return []int{cmd.Process.Pid} },
		stop: func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() },
	}
}

// startNginx runs Debian's nginx as a caching reverse proxy of the upstream.
func startNginx(b *testing.B, u *upstream) *server {
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
		b.Skip("nginx not installed (apt-get install nginx): skipping the side-by-side run")
	}
	prefix := b.TempDir()
	for _, d := range []string{"cache", "tmp", "logs"} {
		os.MkdirAll(filepath.Join(prefix, d), 0o777)
	}
	port := freePort(b)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 2;
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
`, user, prefix, port, u.repo.URL())
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
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

// cpuSeconds sums user+system CPU time of pids from /proc.
func cpuSeconds(pids []int) float64 {
	const hz = 100 // USER_HZ on Linux
	total := 0.0
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		total += (ut + st) / hz
	}
	return total
}

// Package cacheproc runs Patchgate's update cache as a process of its own for the
// benchmarks in test/bench: a benchmark re-executes its test binary (Kind.Start), whose
// child test (Kind.Serve) serves the real cache over a mirror of the benchmark's TUF
// repository on loopback, so that the server's CPU time is measured apart from the load
// generator's (CPUSeconds).
package cacheproc

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
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// Kind names one benchmark package's server process: the child test that serves and
// the prefix of the environment the parent passes it.
type Kind struct {
	// Bench names the benchmarks, for the child's skip message ("cache").
	Bench string
	// Test is the name of the child test, which calls Serve ("TestServeChild").
	Test string
	// Env prefixes the child's environment variables ("PG_BENCH": PG_BENCH_DIR, …).
	// Env+"_CPUPROFILE", set by whoever runs the benchmark, makes the child write a
	// CPU profile to that name plus the profile tag and the child's process id.
	Env string
}

// Child is what Serve hands the benchmark's setup: the cache's handler and the
// server's mux, before it serves, and the logger and registry the cache uses.
type Child struct {
	Handler  *cache.Handler
	Mux      *http.ServeMux
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// ProfileTag, when setup sets it, goes into the CPU profile's file name
	// between the name given and the process id.
	ProfileTag string
}

// Serve is the body of k's child test. It skips the test unless Start started this
// process; otherwise it builds a mirror of the parent's repository and a cache in the
// directory Start gave, serves the cache's handler under /repos/ and a mirror refresh
// at /refresh, lets setup (when not nil) change the handler and add to the mux, prints
// "ADDR host:port" and serves until killed.
func (k Kind) Serve(t *testing.T, setup func(*Child) error) {
	dir := os.Getenv(k.Env + "_DIR")
	if dir == "" {
		t.Skipf("server process of the %s benchmarks only", k.Bench)
	}
	root, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "demo", MetadataURL: os.Getenv(k.Env + "_META"), TargetsURL: os.Getenv(k.Env + "_TARGETS"),
		TrustedRoot: root, StateDir: filepath.Join(dir, "tuf")}, tuf.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{Dir: filepath.Join(dir, "store")}, []*tuf.Mirror{m}, cache.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	child := &Child{Handler: &cache.Handler{Cache: c}, Mux: http.NewServeMux(), Logger: log, Registry: reg}
	if setup != nil {
		if err := setup(child); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	child.Mux.Handle("/repos/", child.Handler)
	child.Mux.HandleFunc("/refresh", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Refresh(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
	if prof := os.Getenv(k.Env + "_CPUPROFILE"); prof != "" {
		// Profile the server until the benchmark stops it (SIGTERM).
		name := prof
		if child.ProfileTag != "" {
			name += "." + child.ProfileTag
		}
		f, err := os.Create(fmt.Sprintf("%s.%d", name, os.Getpid()))
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() { <-sig; pprof.StopCPUProfile(); f.Close(); os.Exit(0) }()
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	http.Serve(ln, child.Mux)
}

// Start re-executes this test binary as k's server, with its files in dir, mirroring
// repo, and env added to its environment (K=V: GOMAXPROCS, the benchmark's own
// settings). It returns the server's address once the mirror has refreshed, and the
// process, which the caller stops (SIGTERM) and waits for.
func (k Kind) Start(b *testing.B, dir string, repo *tuftest.Repo, env ...string) (string, *exec.Cmd) {
	b.Helper()
	return k.StartOn(b, "", dir, repo, env...)
}

// StartOn is Start with the server pinned to cpus (see Pinned; "" leaves it unpinned).
func (k Kind) StartOn(b *testing.B, cpus, dir string, repo *tuftest.Repo, env ...string) (string, *exec.Cmd) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), repo.Root(), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd, err := Pinned(cpus, os.Args[0], "-test.run=^"+k.Test+"$")
	if err != nil {
		b.Skip(err)
	}
	cmd.Env = append(os.Environ(), k.Env+"_DIR="+dir, k.Env+"_META="+repo.MetadataURL(), k.Env+"_TARGETS="+repo.TargetsURL())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	kill := func() { cmd.Process.Kill(); cmd.Wait() }
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		kill()
		b.Fatalf("patchgate server of the %s benchmarks did not start", k.Bench)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	resp, err := http.Post("http://"+addr+"/refresh", "", nil)
	if err != nil || resp.StatusCode != 200 {
		kill()
		b.Fatalf("refresh: %v %v", resp, err)
	}
	resp.Body.Close()
	return addr, cmd
}

// Pinned is exec.Command(name, args...) run by taskset on cpus (a CPU list such as
// "0" or "0-1"), so that the process and every thread and child it makes stay on those
// CPUs; with cpus "" it is plain exec.Command. taskset execs name, so the command's
// process id is name's own. It fails only when taskset (util-linux) is missing.
func Pinned(cpus, name string, args ...string) (*exec.Cmd, error) {
	if cpus == "" {
		return exec.Command(name, args...), nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return nil, fmt.Errorf("pin to CPUs %s: taskset (util-linux) not installed: %w", cpus, err)
	}
	return exec.Command(ts, append([]string{"-c", cpus, name}, args...)...), nil
}

// CPUSeconds is the user+system CPU time of process pid, from /proc.
func CPUSeconds(pid int) (float64, error) {
	const hz = 100 // USER_HZ on Linux
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpu seconds: /proc/%d/stat: %d fields after the name, want 13 or more", pid, len(fields))
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / hz, nil
}

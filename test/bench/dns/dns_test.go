// Package dnsbench measures Patchgate's resolver against Debian's Unbound, configured
// with the same allowlist (local-zone/local-data), both forwarding allowed names to the
// same loopback upstream, under load from Debian's dnsperf, in rounds where the two take
// turns. Run it with
//
//	go test -run '^$' -bench . -benchtime 1x ./test/bench/dns
//
// It needs the unbound and dnsperf programs (apt-get install unbound dnsperf) and skips
// without them. Everything runs on 127.0.0.1.
package dnsbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/segment"
	"github.com/patchgate/patchgate/conf"
)

const (
	roleEnv = "PG_DNSBENCH_RESOLVER"
	// profileEnv, when set to a file name, makes the resolver child write a CPU profile
	// of its whole life (warm-up, saturation and fixed-rate runs) there:
	//	PG_DNSBENCH_CPUPROFILE=/tmp/resolver.prof go test -run '^$' -bench . ./test/bench/dns
	//	go tool pprof -top /tmp/resolver.prof
	profileEnv = "PG_DNSBENCH_CPUPROFILE"
)

// TestMain runs the resolver in a child process when asked, so that its CPU time can be
// read from /proc like Unbound's.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(roleEnv); cfg != "" {
		os.Exit(runResolver(cfg))
	}
	os.Exit(m.Run())
}

func runResolver(cfgJSON string) int {
	var cfg resolver.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Table = benchSegments // a Table does not travel in JSON
	s, err := resolver.New(cfg, resolver.Options{})
	if err == nil {
		err = s.Listen()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if path := os.Getenv(profileEnv); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // stop when the parent closes stdin
		bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	fmt.Printf("ADDR %s\n", s.Addrs()[0])
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// The names: allowed exact names and a wildcard are forwarded, cached names are
// rewritten to the appliance, everything else is blocked.
const (
	nAllowed   = 200
	nWildcard  = 100
	nRewritten = 50
	nBlocked   = 400
)

func names() (allowed, wildcard, rewritten, blocked []string) {
	for i := range nAllowed {
		allowed = append(allowed, fmt.Sprintf("host%d.allowed.bench", i))
	}
	for i := range nWildcard {
		wildcard = append(wildcard, fmt.Sprintf("x%d.cdn.bench", i))
	}
	for i := range nRewritten {
		rewritten = append(rewritten, fmt.Sprintf("repo%d.cache.bench", i))
	}
	for i := range nBlocked {
		blocked = append(blocked, fmt.Sprintf("site%d.blocked.bench", i))
	}
	return
}

// queryFile writes dnsperf's input: 40% allowed (exact and wildcard), 20% rewritten, 40%
// blocked, A and AAAA, shuffled with a fixed seed.
func queryFile(t testing.TB, dir string) string {
	allowed, wildcard, rewritten, blocked := names()
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[r.IntN(len(s))] }
	var b strings.Builder
	for range 20000 {
		var n string
		switch p := r.IntN(100); {
		case p < 25:
			n = pick(allowed)
		case p < 40:
			n = pick(wildcard)
		case p < 60:
			n = pick(rewritten)
		default:
			n = pick(blocked)
		}
		typ := "A"
		if r.IntN(4) == 0 {
			typ = "AAAA"
		}
		fmt.Fprintf(&b, "%s %s\n", n, typ)
	}
	path := filepath.Join(dir, "queries.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// upstream is the authoritative stand-in both resolvers forward to: every name has one
// A and one AAAA record with a TTL of an hour.
func upstream(t testing.TB) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 3600}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(192, 0, 2, 1)})
		case dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::1")})
		}
		if opt := req.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// server is a resolver process under test.
type server struct {
	name string
	addr string // 127.0.0.1:port
	cmd  *exec.Cmd
}

func (s *server) port() string { _, p, _ := net.SplitHostPort(s.addr); return p }

// cpu is the process's user+system CPU time so far.
func (s *server) cpu(t testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func freePort(t testing.TB) int {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// benchSegments is the one segment the resolver serves: all of loopback.
var benchSegments = segment.NewTable(segment.Section{{Name: "loopback", Clients: []conf.Prefix{conf.MustPrefix("127.0.0.0/8")}}})

func startPatchgate(t testing.TB, up, cpus string) *server {
	allowed, _, rewritten, _ := names()
	cfg := resolver.Config{
		Listen:          []string{"127.0.0.1:0"},
		Upstreams:       []resolver.Upstream{{Address: up, Protocol: "udp"}},
		UpstreamTimeout: 2 * time.Second, HealthInterval: time.Hour, ReloadInterval: time.Hour,
		LocalTTL:       60 * time.Second,
		BlockPublicDoH: true,
		Lists: []resolver.List{
			{Name: "allowed", Names: append(slices.Clone(allowed), "*.cdn.bench")},
			{Name: "cached", Names: rewritten},
		},
		Segments: []resolver.Segment{{Name: "loopback", Allow: []string{"allowed"}, Rewrite: []string{"cached"},
			RewriteTo: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}}},
		// The production defaults, but no per-client rate limit: all load comes from one
		// address here.
		Cache:    resolver.CacheConfig{Size: 20000, MaxTTL: 24 * time.Hour, NegativeTTL: 5 * time.Minute, Prefetch: true, PrefetchMinHits: 3},
		Limits:   resolver.Limits{MaxConcurrent: 512, UDPBufferSize: 1232, TCPIdleTimeout: 10 * time.Second, TCPMaxQueries: 100, TCPMaxConnections: 256},
		QueryLog: resolver.QueryLogConfig{Ring: 1000, Log: "blocked", LogRate: 10, EventWindow: time.Minute},
	}
	js, _ := json.Marshal(cfg)
	cmd := onCPUs(cpus, os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"="+string(js))
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("resolver child: %q %v", line, err)
	}
	return &server{name: "patchgate", addr: strings.TrimSpace(line[5:]), cmd: cmd}
}

// startUnbound configures Unbound with the same policy: everything NXDOMAIN
// (always_nxdomain on the root), the allowed names and the wildcard's parent transparent
// (forwarded), the cached names redirected to the appliance with local-data.
func startUnbound(t testing.TB, dir, up, cpus string) *server {
	allowed, _, rewritten, _ := names()
	port := freePort(t)
	upHost, upPort, _ := net.SplitHostPort(up)
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  interface: 127.0.0.1@%d
  port: %d
  do-ip6: no
  do-daemonize: no
  use-systemd: no
  chroot: ""
  username: ""
  directory: %q
  pidfile: %q
  logfile: ""
  use-syslog: no
  verbosity: 0
  num-threads: 2
  so-reuseport: yes
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  qname-minimisation: no
  do-not-query-localhost: no
  harden-referral-path: no
  prefetch: yes
  msg-cache-size: 16m
  rrset-cache-size: 32m
  local-zone: "." always_nxdomain
  local-zone: "cdn.bench." transparent
`, port, port, dir, filepath.Join(dir, "unbound.pid"))
	for _, n := range allowed {
		fmt.Fprintf(&b, "  local-zone: %q transparent\n", n+".")
	}
	for _, n := range rewritten {
		fmt.Fprintf(&b, "  local-zone: %q redirect\n  local-data: \"%s. 60 IN A 127.0.0.1\"\n  local-data: \"%s. 60 IN AAAA ::1\"\n", n+".", n, n)
	}
	fmt.Fprintf(&b, "forward-zone:\n  name: \".\"\n  forward-addr: %s@%s\n", upHost, upPort)
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("unbound-checkconf", conf).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	cmd := onCPUs(cpus, "unbound", "-d", "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &server{name: "unbound", addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("repo0.cache.bench.", dns.TypeA)
		if r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, s.addr); err == nil && len(r.Answer) == 1 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("unbound did not start answering")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSame asks both servers a sample of names and requires the same rcode and answer
// count, so that the comparison is of equal work.
func checkSame(t testing.TB, a, b *server) {
	allowed, wildcard, rewritten, blocked := names()
	for _, n := range [][]string{allowed[:3], wildcard[:3], rewritten[:3], blocked[:3]} {
		for _, name := range n {
			var got []string
			for _, s := range []*server{a, b} {
				m := new(dns.Msg)
				m.SetQuestion(name+".", dns.TypeA)
				r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, s.addr)
				if err != nil {
					t.Fatalf("%s %s: %v", s.name, name, err)
				}
				got = append(got, fmt.Sprintf("%s/%d", dns.RcodeToString[r.Rcode], len(r.Answer)))
			}
			if got[0] != got[1] {
				t.Fatalf("%s: %s answers %s, %s answers %s", name, a.name, got[0], b.name, got[1])
			}
		}
	}
}

// warm asks every allowed name once (both types) so that the runs measure the cache.
func warm(t testing.TB, s *server) {
	allowed, wildcard, _, _ := names()
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, n := range append(allowed, wildcard...) {
		for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m := new(dns.Msg)
			m.SetQuestion(n+".", typ)
			if _, _, err := c.Exchange(m, s.addr); err != nil {
				t.Fatalf("warm %s %s: %v", s.name, n, err)
			}
		}
	}
}

// result is one dnsperf run.
type result struct {
	qps       float64
	completed float64
	lost      float64
	cpuPerQ   time.Duration
	p50, p99  time.Duration
}

var (
	qpsRE       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	completedRE = regexp.MustCompile(`Queries completed:\s+([0-9]+)`)
	lostRE      = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	verboseRE   = regexp.MustCompile(`^> \S+ .* ([0-9]+\.[0-9]+)$`)
)

// onCPUs is a command for name that runs on the CPUs listed (taskset -c), or wherever
// the kernel puts it when cpus is empty.
func onCPUs(cpus, name string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, name}, args...)...)
}

// dnsperf runs dnsperf against s for d, on the CPUs listed (all when empty); rate 0
// means as fast as it can (saturation). With a rate it also reports per-query latency
// percentiles (from -v).
func dnsperf(t testing.TB, s *server, file string, d time.Duration, rate int, cpus string) result {
	args := []string{"-s", "127.0.0.1", "-p", s.port(), "-d", file, "-l", strconv.Itoa(int(d.Seconds())),
		"-c", "8", "-T", "2", "-q", "500", "-t", "2"}
	if rate > 0 {
		args = append(args, "-Q", strconv.Itoa(rate), "-v")
	}
	before := s.cpu(t)
	out, err := onCPUs(cpus, "dnsperf", args...).Output()
	cpu := s.cpu(t) - before
	if err != nil {
		t.Fatalf("dnsperf %v: %v\n%s", args, err, out)
	}
	var r result
	for _, m := range []struct {
		re  *regexp.Regexp
		dst *float64
	}{{qpsRE, &r.qps}, {completedRE, &r.completed}, {lostRE, &r.lost}} {
		sub := m.re.FindSubmatch(out)
		if sub == nil {
			t.Fatalf("dnsperf output lacks %s:\n%s", m.re, out)
		}
		*m.dst, _ = strconv.ParseFloat(string(sub[1]), 64)
	}
	if r.completed > 0 {
		r.cpuPerQ = time.Duration(float64(cpu) / r.completed)
	}
	if rate > 0 {
		var lat []float64
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := verboseRE.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				lat = append(lat, v)
			}
		}
		if len(lat) == 0 {
			t.Fatalf("no per-query latencies in dnsperf -v output:\n%.2000s", out)
		}
		slices.Sort(lat)
		r.p50 = time.Duration(lat[len(lat)/2] * 1e9)
		r.p99 = time.Duration(lat[len(lat)*99/100] * 1e9)
	}
	return r
}

// Rounds and run lengths: the two servers take turns (Patchgate first in odd rounds,
// Unbound first in even ones), so that a change in the machine's other load hits both
// alike, and the figures reported are medians over the rounds.
const (
	rounds   = 3
	runFor   = 6 * time.Second
	fixedQPS = 10000
)

// BenchmarkDNSvsUnbound reports, for Patchgate and Unbound side by side: QPS at
// saturation, p50/p99 latency at 10k QPS, server CPU µs per query (at 10k QPS), and the
// ratios Patchgate/Unbound (the median of the rounds' ratios, and the worst round's CPU
// ratio), each the median of `rounds` rounds; every round is logged. The servers and
// dnsperf run wherever the kernel puts them. The measurement is made once whatever b.N
// is.
func BenchmarkDNSvsUnbound(b *testing.B) { benchDNS(b, &onceFree, layout{}) }

// BenchmarkDNSvsUnboundPinned is the same with each server confined to CPU 0 and
// dnsperf to CPU 1 (taskset), as on a one-CPU appliance: the resolver then has one P and
// its readers wait in the runtime's poller, not in the kernel (appliance/resolver's
// README says why). Confining them did not make the rounds steadier: Unbound's own CPU
// per query moved as much as when left to the kernel.
func BenchmarkDNSvsUnboundPinned(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Skip("needs taskset (util-linux)")
	}
	benchDNS(b, &oncePinned, layout{server: "0", client: "1"})
}

// layout says where the servers and dnsperf run (taskset -c lists; empty: anywhere).
type layout struct{ server, client string }

var onceFree, oncePinned sync.Once

func benchDNS(b *testing.B, once *sync.Once, where layout) {
	for _, prog := range []string{"unbound", "unbound-checkconf", "dnsperf"} {
		if _, err := exec.LookPath(prog); err != nil {
			b.Skipf("needs %s (apt-get install unbound dnsperf)", prog)
		}
	}
	var res []roundResult
	once.Do(func() { res = measure(b, where) })
	if res == nil {
		b.Skip("measured in an earlier call")
	}
	for range b.N {
	}
	values := func(f func(r roundResult) float64) []float64 {
		v := make([]float64, len(res))
		for i, r := range res {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v
	}
	med := func(f func(r roundResult) float64) float64 { v := values(f); return v[len(v)/2] }
	µs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	cpuRatio := func(r roundResult) float64 { return float64(r.pg.fixed.cpuPerQ) / float64(r.ub.fixed.cpuPerQ) }
	b.ReportMetric(med(func(r roundResult) float64 { return r.pg.sat.qps }), "pg-qps")
	b.ReportMetric(med(func(r roundResult) float64 { return r.ub.sat.qps }), "unbound-qps")
	b.ReportMetric(med(func(r roundResult) float64 { return r.pg.sat.qps / r.ub.sat.qps }), "qps-ratio")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.pg.fixed.p50) }), "pg-p50-µs")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.ub.fixed.p50) }), "unbound-p50-µs")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.pg.fixed.p99) }), "pg-p99-µs")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.ub.fixed.p99) }), "unbound-p99-µs")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.pg.fixed.cpuPerQ) }), "pg-cpu-µs/q")
	b.ReportMetric(med(func(r roundResult) float64 { return µs(r.ub.fixed.cpuPerQ) }), "unbound-cpu-µs/q")
	b.ReportMetric(med(cpuRatio), "cpu-ratio")
	b.ReportMetric(slices.Max(values(cpuRatio)), "worst-cpu-ratio")
	b.ReportMetric(med(func(r roundResult) float64 { return float64(r.pg.sat.cpuPerQ) / float64(r.ub.sat.cpuPerQ) }), "sat-cpu-ratio")
}

// serverResult is one server's runs in one round.
type serverResult struct{ sat, fixed result }

// roundResult is one round: both servers, saturation and fixed rate each.
type roundResult struct{ pg, ub serverResult }

func measure(b *testing.B, where layout) []roundResult {
	dir := b.TempDir()
	up := upstream(b)
	file := queryFile(b, dir)
	pg := startPatchgate(b, up, where.server)
	ub := startUnbound(b, dir, up, where.server)
	checkSame(b, pg, ub)
	warm(b, pg)
	warm(b, ub)
	var out []roundResult
	for round := 1; round <= rounds; round++ {
		order := []*server{pg, ub}
		if round%2 == 0 {
			order = []*server{ub, pg}
		}
		var rr roundResult
		for _, s := range order {
			sat := dnsperf(b, s, file, runFor, 0, where.client)
			fixed := dnsperf(b, s, file, runFor, fixedQPS, where.client)
			load, _ := os.ReadFile("/proc/loadavg") // other work on the machine skews everything
			b.Logf("round %d %-9s saturation %8.0f qps (lost %.0f, cpu %v/q) | 10k qps: p50 %v p99 %v, cpu %v/q, lost %.0f | loadavg %s",
				round, s.name, sat.qps, sat.lost, sat.cpuPerQ, fixed.p50, fixed.p99, fixed.cpuPerQ, fixed.lost, strings.Fields(string(load))[0])
			if s == pg {
				rr.pg = serverResult{sat, fixed}
			} else {
				rr.ub = serverResult{sat, fixed}
			}
		}
		b.Logf("round %d ratios Patchgate/Unbound: QPS %.2f, CPU/q at 10k %.2f, CPU/q at saturation %.2f", round,
			rr.pg.sat.qps/rr.ub.sat.qps, float64(rr.pg.fixed.cpuPerQ)/float64(rr.ub.fixed.cpuPerQ),
			float64(rr.pg.sat.cpuPerQ)/float64(rr.ub.sat.cpuPerQ))
		out = append(out, rr)
	}
	return out
}

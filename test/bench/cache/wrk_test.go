package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/bench/cacheproc"
)

// BenchmarkServerBoundHit is BenchmarkCachedHit's small-object comparison of
// the Lean loop (the Patchgate process's distribution listener) and nginx,
// made server-bound: the load generator is wrk, pinned (taskset) to one CPU,
// and each server to the other, with GOMAXPROCS=1 / worker_processes 1.
// In BenchmarkCachedHit the Go client shares both CPUs with the server and
// saturates first: any server cheaper than it shows the same requests/s.
// Here wrk needs less of its CPU than either server needs of its own, so
// the rate is the server's. Both get the same object and the same number
// of keep-alive connections, in turns of PG_BENCH_WRK_TURN (default 5s) in
// the order A B B A each iteration. It reports each server's requests/s,
// server CPU microseconds per request and the share of its CPU the server
// and wrk used (the server near 1 and wrk below it: server-bound), and the
// ratios Lean / nginx. PG_BENCH_SERVER_CPU and PG_BENCH_WRK_CPU choose the
// CPUs (default 0 and 1). It skips without wrk or with fewer than 2 CPUs,
// and measures Lean alone without nginx.
func BenchmarkServerBoundHit(b *testing.B) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk not installed (apt-get install wrk): the server-bound comparison needs it")
	}
	if runtime.NumCPU() < 2 {
		b.Skipf("%d CPU: the server-bound comparison needs 2, one for the server, one for wrk", runtime.NumCPU())
	}
	turn := 5 * time.Second
	if v := os.Getenv("PG_BENCH_WRK_TURN"); v != "" {
		if turn, err = time.ParseDuration(v); err != nil || turn < time.Second {
			b.Fatalf("PG_BENCH_WRK_TURN=%q: want a duration of 1s or more", v)
		}
	}
	at := placement{procs: 1, cpus: envOr("PG_BENCH_SERVER_CPU", "0")}
	w := wrk{bin: bin, cpus: envOr("PG_BENCH_WRK_CPU", "1"), script: filepath.Join(b.TempDir(), "summary.lua")}
	if err := os.WriteFile(w.script, []byte(wrkScript), 0o644); err != nil {
		b.Fatal(err)
	}
	parent := b
	u := newUpstream(b)
	for _, o := range objects {
		if o.size > 64<<10 { // Lean serves small objects only
			continue
		}
		var runs []*run
		setup := func(b *testing.B) {
			if runs != nil {
				return
			}
			pg := startPatchgate(b, parent.TempDir(), u, at)
			runs = []*run{{s: &server{name: "lean", pids: pg.pids, stop: pg.stop}, url: pg.lean + "/obj/" + o.name}}
			if ng := startNginx(b, parent.TempDir(), u, at); ng != nil {
				runs = append(runs, &run{s: ng, url: ng.base + "/obj/" + o.name})
			} else {
				b.Log("nginx not installed (apt-get install nginx): Lean alone")
			}
			for _, r := range runs {
				r.c = client(1)
				if _, err := get(r.c, r.url); err != nil { // the miss
					b.Fatal(err)
				}
				if err := r.measureWrk(w, o.concurrency, time.Second); err != nil { // warm up
					b.Fatal(err)
				}
			}
		}
		b.Run(o.name, func(b *testing.B) {
			b.StopTimer()
			setup(b)
			abba := turns(runs)
			load0 := loadAvg()
			b.StartTimer()
			for range b.N {
				for _, r := range abba {
					n, secs, cpu, client := r.requests, r.secs, r.cpu, r.client
					if err := r.measureWrk(w, o.concurrency, turn); err != nil {
						b.Fatal(err)
					}
					if !testing.Verbose() { // go test -v: each turn (without it, a benchmark's log stops at 10 lines)
						continue
					}
					secs = r.secs - secs
					b.Logf("turn %s: %.0f req/s, server CPU %.2f, wrk CPU %.2f, load %s", r.s.name,
						float64(r.requests-n)/secs, (r.cpu-cpu)/secs, (r.client-client)/secs, loadAvg())
				}
			}
			for _, r := range runs {
				if share := r.cpu / r.secs; share < 0.9 {
					b.Logf("%s had %.2f of its CPU: not server-bound (other work on CPU %s?), so req/s is not its rate; cpu-us/req still is its cost",
						r.s.name, share, at.cpus)
				}
				b.ReportMetric(float64(r.requests)/r.secs, r.s.name+"-req/s")
				b.ReportMetric(r.cpu/float64(r.requests)*1e6, r.s.name+"-cpu-us/req")
				b.ReportMetric(r.cpu/r.secs, r.s.name+"-server-cpu")
				b.ReportMetric(r.client/r.secs, r.s.name+"-wrk-cpu")
			}
			if len(runs) == 2 {
				lean, ng := runs[0], runs[1]
				b.ReportMetric((float64(lean.requests)/lean.secs)/(float64(ng.requests)/ng.secs), "lean-ratio-req/s")
				b.ReportMetric((lean.cpu/float64(lean.requests))/(ng.cpu/float64(ng.requests)), "lean-ratio-cpu/req")
			}
			b.ReportMetric(0, "ns/op")
			b.Logf("b.N=%d, turns of %s, server on CPU %s, wrk on CPU %s: load average (1, 5, 15 min) %s before, %s after",
				b.N, turn, at.cpus, w.cpus, load0, loadAvg())
		})
		for _, r := range runs {
			r.s.stop()
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// wrk is how the server-bound benchmark runs wrk: the binary, the CPUs it is
// pinned to and the file holding wrkScript.
type wrk struct {
	bin, cpus, script string
}

// measureWrk runs wrk with conns keep-alive connections against r.url for d
// and adds its requests, bytes and duration, the server's CPU time meanwhile
// and wrk's own to the run's totals.
func (r *run) measureWrk(w wrk, conns int, d time.Duration) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+time.Minute)
	defer cancel()
	cmd, err := cacheproc.Pinned(w.cpus, w.bin, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s",
		"--timeout", "10s", "-s", w.script, r.url)
	if err != nil {
		return err
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cpu0 := cpuSeconds(r.s.pids())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("wrk %s: %w", r.url, err)
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	err = cmd.Wait()
	stop()
	cpu := cpuSeconds(r.s.pids()) - cpu0
	if err != nil {
		return fmt.Errorf("wrk %s: %w: %s", r.url, err, bytes.TrimSpace(stderr.Bytes()))
	}
	res, err := parseWrk(out.Bytes())
	if err != nil {
		return fmt.Errorf("wrk %s: %w", r.url, err)
	}
	if n := res.failures(); n > 0 {
		return fmt.Errorf("wrk %s: %d of %d requests failed (%+v)", r.url, n, res.Requests, res.Errors)
	}
	r.requests += int(res.Requests)
	r.bytes += res.Bytes
	r.secs += float64(res.DurationUS) / 1e6
	r.cpu += cpu
	r.client += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return nil
}

// wrkScript is the Lua script wrk runs: when done, it prints its summary
// as one line of JSON, which parseWrk reads.
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"pg_wrk":1,"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_p50_us":%.0f,"latency_p99_us":%.0f}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`

// wrkResult is the summary wrkScript prints.
type wrkResult struct {
	Version    int   `json:"pg_wrk"`
	DurationUS int64 `json:"duration_us"`
	Requests   int64 `json:"requests"`
	Bytes      int64 `json:"bytes"` // read, headers included
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"` // answers other than 2xx and 3xx
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	LatencyP50US int64 `json:"latency_p50_us"`
	LatencyP99US int64 `json:"latency_p99_us"`
}

// failures is the count of errors of every kind wrk saw.
func (r wrkResult) failures() int64 {
	e := r.Errors
	return e.Connect + e.Read + e.Write + e.Status + e.Timeout
}

var wrkPrefix = []byte(`{"pg_wrk":`)

// parseWrk finds in wrk's output (its own report and the line wrkScript
// prints) the summary line and checks it: exactly one, of version 1, with
// no unknown fields, no negative counts and a run that took time and
// completed requests.
func parseWrk(out []byte) (wrkResult, error) {
	var res wrkResult
	var found []byte
	at := 0
	for i, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if !bytes.HasPrefix(line, wrkPrefix) {
			continue
		}
		if found != nil {
			return res, fmt.Errorf("parse wrk output: summary lines at lines %d and %d, want one", at, i+1)
		}
		found, at = line, i+1
	}
	if found == nil {
		return res, errors.New(`parse wrk output: no summary line ({"pg_wrk":...}): was it run with the done() script?`)
	}
	dec := json.NewDecoder(bytes.NewReader(found))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return res, fmt.Errorf("parse wrk output: line %d: %w", at, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(found)) {
		return res, fmt.Errorf("parse wrk output: line %d: text after the summary at byte %d", at, dec.InputOffset())
	}
	e := res.Errors
	switch {
	case res.Version != 1:
		return res, fmt.Errorf("parse wrk output: line %d: summary version %d, want 1", at, res.Version)
	case slices.Min([]int64{res.DurationUS, res.Requests, res.Bytes, e.Connect, e.Read, e.Write, e.Status, e.Timeout, res.LatencyP50US, res.LatencyP99US}) < 0:
		return res, fmt.Errorf("parse wrk output: line %d: a negative count", at)
	case res.DurationUS == 0:
		return res, fmt.Errorf("parse wrk output: line %d: a run of no time", at)
	case res.Requests == 0:
		return res, fmt.Errorf("parse wrk output: line %d: no request completed", at)
	}
	return res, nil
}

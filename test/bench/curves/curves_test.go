package curves

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// full reports whether PG_CURVES=full asks for the sizes; otherwise the curves
// run at small sizes (a smoke run of the harness, for `make bench`).
func full() bool { return os.Getenv("PG_CURVES") == "full" }

// sizes returns the full sizes or the small ones.
func sizes(fullSizes, small []int) []int {
	if full() {
		return fullSizes
	}
	return small
}

func outDir() string {
	if d := os.Getenv("PG_CURVES_OUT"); d != "" {
		return d
	}
	return filepath.Join("..", "out", "curves")
}

// loadAvg is the machine's 1-minute load average, written beside every point.
func loadAvg() float64 {
	var l float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &l)
	}
	return l
}

// heapMiB is the live heap after a full collection, in MiB.
func heapMiB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// writeHeapProfile writes the live heap to $PG_CURVES_HEAPPROFILE-NAME.pprof when that
// is set (for `go tool pprof -sample_index=inuse_space`): where a curve's memory goes.
func writeHeapProfile(b *testing.B, name string) {
	prefix := os.Getenv("PG_CURVES_HEAPPROFILE")
	if prefix == "" {
		return
	}
	f, err := os.Create(prefix + "-" + name + ".pprof")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// done keeps each curve to one measurement per process: a benchmark function is called
// more than once (b.N = 1, then the -benchtime count).
var done sync.Map

func once(b *testing.B, name string, measure func(b *testing.B) []*Curve) {
	b.ReportMetric(0, "ns/op")
	if _, ok := done.LoadOrStore(name, true); ok {
		return
	}
	for _, c := range measure(b) {
		c.Notes = append(c.Notes, "go test -run '^$' -bench "+strings.SplitN(b.Name(), "-", 2)[0]+" -benchtime 1x ./test/bench/curves (PG_CURVES="+os.Getenv("PG_CURVES")+"), "+time.Now().UTC().Format("2006-01-02"))
		if err := c.Save(outDir()); err != nil {
			b.Fatal(err)
		}
		var sb strings.Builder
		c.WriteCSV(&sb)
		b.Logf("%s:\n%s", c.Name, sb.String())
	}
}

// loadNote says the machine's load average at each point.
func loadNote(la []float64) string {
	s := make([]string, len(la))
	for i, l := range la {
		s[i] = fmt.Sprintf("%.1f", l)
	}
	return "1-min load average at each point: " + strings.Join(s, ", ") + " (2 vCPUs shared with other work: figures under load are provisional)"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fakeUpstream answers every A question with 192.0.2.1 (TTL one hour).
func fakeUpstream(b *testing.B) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(192, 0, 2, 1)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	b.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// blast sends A queries for names from clients goroutines, one outstanding query each,
// for d, and returns the answers per second.
func blast(addr string, names []string, clients int, d time.Duration) float64 {
	var answered atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c, err := net.Dial("udp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			m := new(dns.Msg)
			buf := make([]byte, 1500)
			for time.Now().Before(stop) {
				m.SetQuestion(names[r.IntN(len(names))], dns.TypeA)
				out, _ := m.Pack()
				c.SetDeadline(time.Now().Add(time.Second))
				if _, err := c.Write(out); err != nil {
					continue
				}
				if _, err := c.Read(buf); err == nil {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(answered.Load()) / d.Seconds()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// get fetches url and drains the body.
func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

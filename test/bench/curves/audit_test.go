package curves

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/store"
)

// peakHeap samples the heap in use every 20 ms until stop is called, which returns the
// largest sample in MiB.
func peakHeap() (stop func() float64) {
	var mu sync.Mutex
	var peak uint64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapInuse)
			mu.Unlock()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return float64(peak) / (1 << 20)
	}
}

// tmpDir is a directory on tmpfs when the machine has one (writing millions of audit
// records with an fsync each would take hours on disk), else b.TempDir.
func tmpDir(b *testing.B) string {
	if d, err := os.MkdirTemp("/dev/shm", "pg-curves-"); err == nil {
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// cpuSecs is this process's user+system CPU time.
func cpuSecs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkCurveAuditVerify: `audit verify` (audit.Verify: the file and the database
// read, every hash and the chain checked, the checkpoints against the Merkle roots)
// time and peak heap against the number of records. The trail is written through
// audit.Log, on tmpfs; the figures are CPU and memory, not the disk's.
func BenchmarkCurveAuditVerify(b *testing.B) {
	once(b, "audit-verify", func(b *testing.B) []*Curve {
		ctx := context.Background()
		dir := tmpDir(b)
		db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		l, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(dir, "audit"), Logger: discard()})
		if err != nil {
			b.Fatal(err)
		}
		var xs, secs, cpus, peak, la []float64
		written := 0
		for _, n := range sizes([]int{10000, 100000, 300000, 1000000}, []int{1000, 10000}) {
			t0 := time.Now()
			for ; written < n; written++ {
				e := audit.Entry{Actor: "admin", Role: "admin", AuthMethod: "password", Source: "192.0.2.10",
					Action: "rollout.approve", Object: fmt.Sprintf("release/%d", written), Details: map[string]string{"ring": "pilot", "n": fmt.Sprint(written)}}
				if err := l.Record(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			write := time.Since(t0)
			if _, err := l.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			lv := loadAvg()
			stop := peakHeap()
			t1, c1 := time.Now(), cpuSecs()
			rep, err := l.Verify(ctx)
			d, cpu := time.Since(t1), cpuSecs()-c1
			p := stop()
			if err != nil {
				b.Fatal(err)
			}
			xs, secs, cpus, peak, la = append(xs, float64(n)), append(secs, d.Seconds()), append(cpus, cpu), append(peak, p), append(la, lv)
			b.Logf("records %d (written in %v): verify %v (CPU %.2f s), peak heap %.1f MiB, load %.1f: %s", n, write, d, cpu, p, lv, rep)
		}
		note := loadNote(la)
		return []*Curve{
			{Name: "audit-verify", Title: "audit verify: time and peak heap vs records", XLabel: "records",
				YLabel: "s, MiB", LogX: true, LogY: true, X: xs, Series: []Series{{"verify s (wall)", secs}, {"verify CPU s", cpus}, {"peak heap MiB", peak}}, Notes: []string{note, "trail on tmpfs: CPU and memory, not disk"}},
		}
	})
}

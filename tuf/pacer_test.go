package tuf_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// waitClock advances its own time by every wait asked of it, at once, so a
// test can read how long pacing would have taken without sleeping.
type waitClock struct {
	mu     sync.Mutex
	now    time.Time
	waited time.Duration
}

func (c *waitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *waitClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waited += d
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

func TestUpstreamBandwidthCap(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	repo := tuftest.New(t)
	repo.AddTarget("big.bin", data)
	repo.Publish()
	clock := &waitClock{now: time.Now()}
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "capped", MetadataURL: repo.MetadataURL(), TargetsURL: repo.TargetsURL(),
		TrustedRoot: repo.Root(), StateDir: t.TempDir(), UpstreamBytesPerSecond: 256 << 10},
		tuf.Options{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ti, err := m.Target(context.Background(), "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	clock.mu.Lock()
	clock.waited = 0
	clock.mu.Unlock()
	body, err := m.OpenTarget(context.Background(), ti, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	body.Close()
	if err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	// 1 MiB at 256 KiB/s: about 4 s of pacing (the first chunk goes at once).
	clock.mu.Lock()
	waited := clock.waited
	clock.mu.Unlock()
	if waited < 3500*time.Millisecond || waited > 4*time.Second {
		t.Errorf("paced for %s, want about 4s for 1 MiB at 256 KiB/s", waited)
	}
}

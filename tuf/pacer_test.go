package tuf_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

func TestUpstreamBandwidthCap(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1<<20)
	repo := tuftest.New(t)
	repo.AddTarget("big.bin", data)
	repo.Publish()
	// The fake clock advances by every wait asked of it, at once, so the test reads
	// how long pacing would have taken without sleeping.
	clk := clock.NewFake(time.Now())
	clk.SetAutoAdvance(true)
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: "capped", MetadataURL: repo.MetadataURL(), TargetsURL: repo.TargetsURL(),
		TrustedRoot: repo.Root(), StateDir: t.TempDir(), UpstreamBytesPerSecond: 256 << 10},
		tuf.Options{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Clock: clk})
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
	start := clk.Now()
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
	waited := clk.Now().Sub(start)
	if waited < 3500*time.Millisecond || waited > 4*time.Second {
		t.Errorf("paced for %s, want about 4s for 1 MiB at 256 KiB/s", waited)
	}
}

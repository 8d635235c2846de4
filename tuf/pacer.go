package tuf

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/patchgate/patchgate/clock"
)

// pacer spreads reads so that, summed over every reader sharing it, at most
// rate bytes per second go through. It is safe for concurrent use.
type pacer struct {
	rate  int64
	clock clock.Clock

	mu   sync.Mutex
	next time.Time
}

// take books n bytes and waits until they fit the rate.
func (p *pacer) take(ctx context.Context, n int) error {
	p.mu.Lock()
	now := p.clock.Now()
	if p.next.Before(now) {
		p.next = now
	}
	delay := p.next.Sub(now)
	p.next = p.next.Add(time.Duration(int64(n) * int64(time.Second) / p.rate))
	p.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-p.clock.After(delay):
		return nil
	}
}

// pacedReader reads through a pacer in chunks of at most 32 KiB.
type pacedReader struct {
	ctx context.Context // the ctx of the one OpenTarget call this reader serves
	r   io.ReadCloser
	p   *pacer
}

func (r *pacedReader) Read(b []byte) (int, error) {
	if len(b) > 32<<10 {
		b = b[:32<<10]
	}
	n, err := r.r.Read(b)
	if n > 0 {
		if perr := r.p.take(r.ctx, n); perr != nil && err == nil {
			err = perr
		}
	}
	return n, err
}

func (r *pacedReader) Close() error { return r.r.Close() }

package resolver

import (
	"net/netip"
	"sync"
	"time"
)

// maxBuckets bounds the rate limiter's memory; past it, idle (full) buckets are dropped,
// and if none is idle the client is limited until one is.
const maxBuckets = 65536

// clientLimiter is a token bucket per client address: rate tokens a second, up to burst.
// It is safe for concurrent use.
type clientLimiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	m     map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newClientLimiter(rate float64, burst int) *clientLimiter {
	if rate <= 0 {
		return nil
	}
	return &clientLimiter{rate: rate, burst: float64(burst), m: map[netip.Addr]*bucket{}}
}

// allow takes a token for a at now, reporting false when a is over its rate. A nil
// limiter allows everything.
func (l *clientLimiter) allow(a netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[a]
	if !ok {
		if len(l.m) >= maxBuckets && !l.sweep(now) {
			return false
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[a] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops buckets that have filled up again (their clients are idle); it reports
// whether any was dropped. Called with mu held.
func (l *clientLimiter) sweep(now time.Time) bool {
	dropped := false
	for a, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.m, a)
			dropped = true
		}
	}
	return dropped
}

package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told to. Timers and tickers fire, in order, as
// Advance passes their deadlines. Fake is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
	auto    bool // After moves the clock itself (SetAutoAdvance)
}

type waiter struct {
	at     time.Time
	every  time.Duration // 0 for a one-shot timer
	ch     chan time.Time
	active bool
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives once the fake time has advanced by d. With
// auto-advance on, After first moves the clock forward by d itself, so the channel has
// already fired when it is returned.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	auto := f.auto
	f.mu.Unlock()
	if auto && d > 0 {
		w := f.add(d, 0)
		f.Advance(d)
		return w.ch
	}
	return f.add(d, 0).ch
}

// SetAutoAdvance turns auto-advance on or off. When on, every After(d) moves the clock
// forward by d at once: code that waits (retry backoff, pacing) runs straight through
// while the fake time still adds up every wait, so a test can read how long the waits
// would have taken (Now minus the time before) without sleeping or driving the clock.
func (f *Fake) SetAutoAdvance(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auto = on
}

// NewTicker returns a ticker firing every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return &fakeTicker{f: f, w: f.add(d, d)}
}

func (f *Fake) add(d, every time.Duration) *waiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{at: f.now.Add(d), every: every, ch: make(chan time.Time, 1), active: true}
	if d <= 0 && every == 0 {
		w.ch <- f.now
		w.active = false
		return w
	}
	f.waiters = append(f.waiters, w)
	return w
}

// Waiters reports how many timers and tickers are pending; tests use it to wait until a
// goroutine under test has armed its timer before advancing.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiters {
		if w.active {
			n++
		}
	}
	return n
}

// Set moves the clock to t (forward only) firing what falls due on the way.
func (f *Fake) Set(t time.Time) { f.Advance(t.Sub(f.Now())) }

// Advance moves the clock forward by d, firing due timers and tickers in deadline order.
// A ticker whose channel is full drops the tick, as time.Ticker does.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		var due []*waiter
		for _, w := range f.waiters {
			if w.active && !w.at.After(end) {
				due = append(due, w)
			}
		}
		if len(due) == 0 {
			break
		}
		sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
		w := due[0]
		f.now = w.at
		select {
		case w.ch <- w.at:
		default:
		}
		if w.every > 0 {
			w.at = w.at.Add(w.every)
		} else {
			w.active = false
		}
	}
	f.now = end
	live := f.waiters[:0]
	for _, w := range f.waiters {
		if w.active {
			live = append(live, w)
		}
	}
	f.waiters = live
}

type fakeTicker struct {
	f *Fake
	w *waiter
}

func (t *fakeTicker) C() <-chan time.Time { return t.w.ch }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.w.active = false
}

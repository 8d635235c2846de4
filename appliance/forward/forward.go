package forward

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/metric"
)

// Source is the audit trail as the forwarder reads it.
type Source interface {
	// After returns at most limit records numbered after seq, in order.
	After(ctx context.Context, seq uint64, limit int) ([]audit.Record, error)
	// Last is the newest record's number.
	Last() uint64
}

// Target is a Sink with the name its cursor file and metrics carry ("syslog", "https").
type Target struct {
	Name string
	Sink Sink
}

// Targets builds the targets the section sets, each reporting host as its hostname.
func Targets(sec Section, host string) ([]Target, error) {
	var out []Target
	if sec.Syslog.Address != "" {
		s, err := NewSyslogSink(sec.Syslog, host)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{"syslog", s})
	}
	if sec.HTTPS.URL != "" {
		s, err := NewHTTPSSink(sec.HTTPS, host)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{"https", s})
	}
	return out, nil
}

// Options configure New.
type Options struct {
	Dir        string // holds the cursor files, cursor-<target>
	Source     Source
	Rate       int // messages per second per target
	Batch      int
	Retry      time.Duration
	Poll       time.Duration
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service forwards the trail to each target in a goroutine of its own, started by Run
// and stopped when Run's context ends. It is safe for concurrent use.
type Service struct {
	opts    Options
	fwds    []*forwarder
	forward *prometheus.CounterVec
	fails   *prometheus.CounterVec
}

// New loads each target's cursor and registers the metrics. A cursor file that cannot
// be read is an error: forwarding from 0 again would resend the whole trail.
func New(opts Options, targets ...Target) (*Service, error) {
	defaults.Fill(&opts.Clock, &opts.Logger, nil)
	if opts.Rate < 1 {
		opts.Rate = 1
	}
	if opts.Batch < 1 {
		opts.Batch = 1
	}
	s := &Service{opts: opts}
	ms := metric.New(opts.Registerer, "siem")
	s.forward = ms.CounterVec("forwarded_records_total", "Audit records the target acknowledged.", "target")
	s.fails = ms.CounterVec("send_failures_total", "Batches the target did not take (sent again after siem.retry).", "target")
	for _, t := range targets {
		f := &forwarder{s: s, name: t.Name, sink: t.Sink, path: filepath.Join(opts.Dir, "cursor-"+t.Name)}
		c, err := loadCursor(f.path)
		if err != nil {
			return nil, err
		}
		f.cursor = c
		s.fwds = append(s.fwds, f)
		s.forward.WithLabelValues(t.Name)
		s.fails.WithLabelValues(t.Name)
		ms.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ms.Name("backlog_records"),
			Help: "Audit records not yet forwarded to the target.", ConstLabels: prometheus.Labels{"target": t.Name}},
			func() float64 { return float64(f.status().Backlog) }))
	}
	if err := ms.Err(); err != nil {
		return nil, fmt.Errorf("forward: metrics: %w", err)
	}
	return s, nil
}

// Name implements the appliance's Service.
func (s *Service) Name() string { return "siem" }

// Ready is always true: forwarding catches up on its own.
func (s *Service) Ready() bool { return true }

// Run forwards until ctx ends, then closes the targets.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range s.fwds {
		wg.Go(func() { f.run(ctx) })
	}
	wg.Wait()
	for _, f := range s.fwds {
		f.sink.Close()
	}
	return nil
}

// TargetStatus is one target's state.
type TargetStatus struct {
	Target    string    `json:"target"`
	Address   string    `json:"address"`
	Cursor    uint64    `json:"cursor"`  // last record acknowledged
	Last      uint64    `json:"last"`    // newest record of the trail
	Backlog   uint64    `json:"backlog"` // records not yet acknowledged
	Forwarded uint64    `json:"forwarded"`
	LastSent  time.Time `json:"last_sent,omitzero"`
	Error     string    `json:"error,omitempty"` // the last failure, until a batch goes through
	Since     time.Time `json:"failing_since,omitzero"`
}

// Status returns every target's state, for the status page.
func (s *Service) Status() []TargetStatus {
	out := make([]TargetStatus, 0, len(s.fwds))
	for _, f := range s.fwds {
		out = append(out, f.status())
	}
	return out
}

// Health warns about each target that is failing.
func (s *Service) Health() []health.Problem {
	var ps []health.Problem
	for _, st := range s.Status() {
		if st.Error != "" {
			ps = append(ps, health.Problem{Code: "siem-" + st.Target, Severity: health.Warning,
				Text: fmt.Sprintf("forwarding to %s fails since %s (%d records waiting): %s", st.Address,
					st.Since.UTC().Format(time.RFC3339), st.Backlog, st.Error)})
		}
	}
	return ps
}

// forwarder sends the trail to one target.
type forwarder struct {
	s    *Service
	name string
	sink Sink
	path string

	mu        sync.Mutex
	cursor    uint64
	forwarded uint64
	lastSent  time.Time
	err       error
	since     time.Time
}

func (f *forwarder) status() TargetStatus {
	last := f.s.opts.Source.Last()
	f.mu.Lock()
	defer f.mu.Unlock()
	st := TargetStatus{Target: f.name, Address: f.sink.String(), Cursor: f.cursor, Last: last,
		Forwarded: f.forwarded, LastSent: f.lastSent, Since: f.since}
	if last > f.cursor {
		st.Backlog = last - f.cursor
	}
	if f.err != nil {
		st.Error = f.err.Error()
	}
	return st
}

func (f *forwarder) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.since = f.s.opts.Clock.Now()
	}
	f.err = err
}

// wait returns false when ctx ends first.
func (f *forwarder) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-f.s.opts.Clock.After(d):
		return true
	}
}

// run reads a batch after the cursor, waits for the rate bound, sends it until the
// target takes it, then moves and saves the cursor. A batch is at most one second's
// worth of messages, and the next one waits until the batch's share of the rate has
// passed, so no second carries more than Rate messages on average.
func (f *forwarder) run(ctx context.Context) {
	o := f.s.opts
	limit := min(o.Batch, o.Rate)
	per := time.Second / time.Duration(o.Rate)
	var next time.Time // the earliest time the next batch may go
	log := o.Logger.With("target", f.name)
	for ctx.Err() == nil {
		f.mu.Lock()
		cursor := f.cursor
		f.mu.Unlock()
		recs, err := o.Source.After(ctx, cursor, limit)
		if err != nil {
			f.fail(fmt.Errorf("forward: read trail: %w", err))
			f.wait(ctx, o.Retry)
			continue
		}
		if len(recs) == 0 {
			f.wait(ctx, o.Poll)
			continue
		}
		if !f.wait(ctx, next.Sub(o.Clock.Now())) {
			return
		}
		if err := f.sink.Send(ctx, recs); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.s.fails.WithLabelValues(f.name).Inc()
			f.fail(err)
			log.Warn("siem: batch not taken, will retry", "err", err, "from", recs[0].Seq)
			f.wait(ctx, o.Retry)
			continue
		}
		now := o.Clock.Now()
		next = now.Add(per * time.Duration(len(recs)))
		last := recs[len(recs)-1].Seq
		serr := saveCursor(f.path, last)
		f.mu.Lock()
		f.cursor, f.forwarded, f.lastSent, f.err = last, f.forwarded+uint64(len(recs)), now, nil
		if serr != nil {
			// Sending goes on; after a restart the records since the saved cursor go again.
			f.err, f.since = serr, now
		}
		f.mu.Unlock()
		f.s.forward.WithLabelValues(f.name).Add(float64(len(recs)))
	}
}

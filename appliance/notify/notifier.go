package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/metric"
)

// Recorder is the audit trail as the notifier uses it (*audit.Log implements it).
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Options are a Notifier's collaborators.
type Options struct {
	Clock      clock.Clock
	Audit      Recorder // nil: sends are not recorded
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// TLSConfig is used for STARTTLS to the relay (its ServerName is set to the relay's
	// host when empty); nil: the system's roots. Tests hand their own CA here.
	TLSConfig *tls.Config
	// HTTPClient posts webhooks; nil: a client that does not follow redirects.
	HTTPClient *http.Client
}

// Notifier sends events to the recipients that want them, by email and webhook. Notify
// never blocks; Run delivers (one goroutine per recipient, so a failing webhook does not
// hold up email) until its ctx ends, and what is still queued then is dropped. A
// Notifier is safe for concurrent use; a nil *Notifier drops every event.
type Notifier struct {
	clock   clock.Clock
	audit   Recorder
	log     *slog.Logger
	retry   Retry
	queue   chan Event
	targets []*target
	met     metrics
}

// target is one recipient: its kinds, rate bucket, queue and way of sending.
type target struct {
	name    string // the email address or webhook name, as audited
	channel string // email or webhook
	all     bool
	kinds   map[Kind]bool
	limiter *rate.Limiter
	jobs    chan Event
	send    func(ctx context.Context, ev Event) error

	mu      sync.Mutex
	lastErr error // of the last delivery; nil when it went out
}

type metrics struct {
	events  *prometheus.CounterVec
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	retries *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

// Drop reasons, the dropped_total metric's reason label.
const (
	dropQueueFull     = "queue_full"
	dropRate          = "rate"
	dropRecipientFull = "recipient_queue_full"
)

// New builds a Notifier for the section's recipients. It sends nothing until Run.
func New(s Section, o Options) (*Notifier, error) {
	defaults.Fill(&o.Clock, &o.Logger, nil)
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ms := metric.New(o.Registerer, "notify")
	n := &Notifier{clock: o.Clock, audit: o.Audit, log: o.Logger, retry: s.Retry, queue: make(chan Event, s.Queue),
		met: metrics{
			events:  ms.CounterVec("events_total", "Events handed to the notifier, by kind.", "kind"),
			sent:    ms.CounterVec("sent_total", "Notifications delivered, by channel (email, webhook).", "channel"),
			failed:  ms.CounterVec("failed_total", "Notifications given up after every attempt failed, by channel.", "channel"),
			retries: ms.CounterVec("retries_total", "Attempts that failed and were tried again, by channel.", "channel"),
			dropped: ms.CounterVec("dropped_total", "Notifications not sent: queue_full, recipient_queue_full or rate (the recipient's bound).", "reason"),
		}}
	ms.GaugeFunc("queue_length", "Events waiting to be handed to recipients.", func() float64 { return float64(len(n.queue)) })
	if err := ms.Err(); err != nil {
		return nil, err
	}
	hooks := map[string]Webhook{}
	for _, w := range s.Webhooks {
		hooks[w.Name] = w
	}
	for i, r := range s.Recipients {
		t := &target{kinds: map[Kind]bool{}, jobs: make(chan Event, s.Queue),
			limiter: rate.NewLimiter(rate.Every(s.Rate.Every.D()), s.Rate.Burst)}
		for _, k := range r.Events {
			t.all = t.all || k == "all"
			t.kinds[Kind(k)] = true
		}
		switch {
		case r.Email != "":
			t.name, t.channel = r.Email, "email"
			t.send = mailer{smtp: s.SMTP, to: r.Email, tls: o.TLSConfig, clock: o.Clock}.send
		default:
			w, ok := hooks[r.Webhook]
			if !ok {
				return nil, errors.New("notify: recipients[" + strconv.Itoa(i) + "]: no webhook " + r.Webhook)
			}
			t.name, t.channel = r.Webhook, "webhook"
			t.send = poster{hook: w, client: o.HTTPClient, clock: o.Clock}.send
		}
		n.targets = append(n.targets, t)
	}
	return n, nil
}

// Name is the service's name on the status page.
func (n *Notifier) Name() string { return "notify" }

// Ready is always true: notifications are never what holds the appliance back.
func (n *Notifier) Ready() bool { return true }

// Health warns about each recipient whose last notification could not be delivered.
func (n *Notifier) Health() []health.Problem {
	if n == nil {
		return nil
	}
	var ps []health.Problem
	for _, t := range n.targets {
		t.mu.Lock()
		err := t.lastErr
		t.mu.Unlock()
		if err != nil {
			ps = append(ps, health.Problem{Code: "notify-failing", Severity: health.Warning,
				Text: "the last notification to " + t.channel + " " + t.name + " failed: " + err.Error()})
		}
	}
	return ps
}

// Notify queues ev for the recipients that want its kind and returns at once. When the
// queue is full the event is dropped and counted (dropped_total{reason="queue_full"}).
// ctx is not kept: delivery runs under Run's context.
func (n *Notifier) Notify(_ context.Context, ev Event) {
	if n == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = n.clock.Now()
	}
	ev.ID = newID()
	select {
	case n.queue <- ev:
	default:
		n.met.dropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// Run hands queued events to the recipients' workers until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range n.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.work(ctx, t)
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-n.queue:
			n.dispatch(ctx, ev)
		}
	}
}

// dispatch gives ev to every recipient that wants it and has a token left.
func (n *Notifier) dispatch(ctx context.Context, ev Event) {
	n.met.events.WithLabelValues(string(ev.Kind)).Inc()
	for _, t := range n.targets {
		if !t.all && !t.kinds[ev.Kind] {
			continue
		}
		if !t.limiter.AllowN(n.clock.Now(), 1) {
			n.met.dropped.WithLabelValues(dropRate).Inc()
			n.record(ctx, t, ev, "notify.suppressed", 0, errors.New("the recipient's rate bound is reached"))
			continue
		}
		select {
		case t.jobs <- ev:
		default:
			n.met.dropped.WithLabelValues(dropRecipientFull).Inc()
			n.record(ctx, t, ev, "notify.suppressed", 0, errors.New("the recipient's queue is full"))
		}
	}
}

// work delivers t's events one after the other, each with its retries.
func (n *Notifier) work(ctx context.Context, t *target) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-t.jobs:
			n.deliver(ctx, t, ev)
		}
	}
}

// deliver tries ev up to retry.attempts times with doubling waits, then records the
// outcome in the audit trail and the metrics.
func (n *Notifier) deliver(ctx context.Context, t *target, ev Event) {
	wait := n.retry.Backoff.D()
	var err error
	attempt := 1
	for ; ; attempt++ {
		if err = t.send(ctx, ev); err == nil || attempt >= n.retry.Attempts {
			break
		}
		n.met.retries.WithLabelValues(t.channel).Inc()
		select {
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		case <-n.clock.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
		wait = min(2*wait, n.retry.MaxBackoff.D())
	}
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
	action := "notify.sent"
	if err != nil {
		action = "notify.failed"
		n.met.failed.WithLabelValues(t.channel).Inc()
		n.log.Warn("notification not delivered", "channel", t.channel, "recipient", t.name, "kind", ev.Kind, "attempts", attempt, "err", err)
	} else {
		n.met.sent.WithLabelValues(t.channel).Inc()
	}
	n.record(context.WithoutCancel(ctx), t, ev, action, attempt, err)
}

// record writes one send (or suppression) to the audit trail.
func (n *Notifier) record(ctx context.Context, t *target, ev Event, action string, attempts int, err error) {
	if n.audit == nil {
		return
	}
	obj := ev.Object
	if obj == "" {
		obj = "notification/" + ev.ID
	}
	d := map[string]string{"id": ev.ID, "kind": string(ev.Kind), "channel": t.channel, "recipient": t.name}
	if attempts > 0 {
		d["attempts"] = strconv.Itoa(attempts)
	}
	if err != nil {
		d["error"] = err.Error()
		if len(d["error"]) > 512 { // the trail takes details up to 1 KiB
			d["error"] = d["error"][:512] + "..."
		}
	}
	if rerr := n.audit.Record(ctx, audit.Entry{Actor: "system:notify", Action: action, Object: obj, Details: d}); rerr != nil {
		n.log.Error("audit: notification not recorded", "err", rerr, "action", action)
	}
}

// newID is a random notification ID (receivers use it to drop a retried duplicate).
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// plainError drops the URL a *url.Error carries (its query may hold a token).
func plainError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// defaultTimeout is a webhook's timeout when its section leaves it 0.
const defaultTimeout = 10 * time.Second

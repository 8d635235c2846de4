package notify

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/notify/notifytest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/conf"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// recorder is a fake audit trail: it keeps every entry and hands each to entries.
type recorder struct {
	entries chan audit.Entry
}

func newRecorder() *recorder { return &recorder{entries: make(chan audit.Entry, 1000)} }

func (r *recorder) Record(_ context.Context, e audit.Entry) error {
	r.entries <- e
	return nil
}

// next waits for the next n audit entries (a guard against a hang, not a timing check).
func (r *recorder) next(t *testing.T, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for len(out) < n {
		select {
		case e := <-r.entries:
			out = append(out, e)
		case <-time.After(60 * time.Second):
			t.Fatalf("got %d audit entries, want %d: %+v", len(out), n, out)
		}
	}
	return out
}

// The SMTP sink lives in notifytest, shared with the browser walk-through.
type smtpSink = notifytest.SMTPSink

var (
	newSMTPSink = notifytest.NewSMTPSink
	mailText    = notifytest.MailText
)

// hookMsg is one POST the webhook receiver took.
type hookMsg struct {
	Body      []byte
	Signed    bool // the signature verified under the receiver's secret
	Timestamp string
	Event     string
}

// webhookReceiver is an httptest server that checks signatures. Its first fail POSTs
// are answered 503.
type webhookReceiver struct {
	URL    string
	Secret string
	mu     sync.Mutex
	fail   int
	posts  chan hookMsg
}

func newWebhookReceiver(t *testing.T, fail int) *webhookReceiver {
	t.Helper()
	w := &webhookReceiver{Secret: "0123456789abcdef-webhook", fail: fail, posts: make(chan hookMsg, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.posts <- hookMsg{Body: b, Signed: Verify([]byte(w.Secret), b, r.Header.Get(SignatureHeader)),
			Timestamp: r.Header.Get(TimestampHeader), Event: r.Header.Get(EventHeader)}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.fail > 0 {
			w.fail--
			http.Error(rw, "busy", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	w.URL = srv.URL + "/hook?token=query-secret"
	return w
}

func (w *webhookReceiver) next(t *testing.T) hookMsg {
	t.Helper()
	return clocktest.Receive(t, w.posts, "a post at the webhook receiver")
}

// section is a valid section with an email recipient (when sink is set) and a webhook
// recipient (when hook is set), each wanting every kind.
func section(sink *smtpSink, hook *webhookReceiver) Section {
	s := DefaultSection()
	s.Enabled = true
	if sink != nil {
		s.SMTP.Host, s.SMTP.Port, s.SMTP.From = sink.Host, sink.Port, "patchgate@site.example"
		s.SMTP.Username, s.SMTP.Password = "relay", conf.Secret("relay-password")
		s.Recipients = append(s.Recipients, Recipient{Email: "it@site.example", Events: []string{"all"}})
	}
	if hook != nil {
		s.Webhooks = []Webhook{{Name: "msp", URL: hook.URL, Secret: conf.Secret(hook.Secret)}}
		s.Recipients = append(s.Recipients, Recipient{Webhook: "msp", Events: []string{"all"}})
	}
	return s
}

// start builds a Notifier on a fake clock and runs it until the test ends.
func start(t *testing.T, s Section, sink *smtpSink, fc *clock.Fake, rec *recorder, run bool) *Notifier {
	t.Helper()
	if ps := func() conf.Problems { var ps conf.Problems; s.Validate("notify", &ps); return ps }(); len(ps) > 0 {
		t.Fatalf("test section invalid: %v", ps)
	}
	o := Options{Clock: fc, Audit: rec}
	if sink != nil && sink.Roots != nil {
		o.TLSConfig = &tls.Config{RootCAs: sink.Roots, MinVersion: tls.VersionTLS12}
	}
	n, err := New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if run {
		runNotifier(t, n)
	}
	return n
}

func runNotifier(t *testing.T, n *Notifier) {
	clocktest.Run(t, n.Run)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

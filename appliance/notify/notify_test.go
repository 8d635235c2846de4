package notify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/clock"
)

func printerEvent() Event {
	return Event{Kind: NewDevice, Subject: "New device on the network: label-printer-2", Object: "asset/mac:00:11:22:33:44:55",
		Assets: []Asset{{Name: "label-printer-2", Address: "10.20.0.14"}}, Time: t0}
}

// TestEmailOverStartTLS sends through a go-smtp sink that offers STARTTLS with a test
// certificate: the message arrives encrypted, authenticated, and the send is audited.
func TestEmailOverStartTLS(t *testing.T) {
	sink := newSMTPSink(t, true)
	rec := newRecorder()
	n := start(t, section(sink, nil), sink, clock.NewFake(t0), rec, true)
	n.Notify(context.Background(), printerEvent())

	m := sink.Next(t)
	if !m.TLS || m.User != "relay" || m.From != "patchgate@site.example" || m.To != "it@site.example" {
		t.Errorf("sink got TLS=%v user=%q from=%q to=%q, want TLS, relay, patchgate@site.example, it@site.example", m.TLS, m.User, m.From, m.To)
	}
	for _, want := range []string{"Subject: [Patchgate] New device: New device on the network: label-printer-2",
		"X-Patchgate-Event: new_device", "label-printer-2 (10.20.0.14)", "asset/mac:00:11:22:33:44:55"} {
		if text := mailText(t, m.Data); !strings.Contains(text, want) {
			t.Errorf("message lacks %q:\n%s", want, text)
		}
	}
	e := rec.next(t, 1)[0]
	want := map[string]string{"id": e.Details["id"], "kind": "new_device", "channel": "email", "recipient": "it@site.example", "attempts": "1"}
	if e.Action != "notify.sent" || e.Actor != "system:notify" || e.Object != "asset/mac:00:11:22:33:44:55" || !cmp.Equal(e.Details, want) || len(e.Details["id"]) != 16 {
		t.Errorf("audit entry = %+v, want notify.sent by system:notify with %v", e, want)
	}
	if got := testutil.ToFloat64(n.met.sent.WithLabelValues("email")); got != 1 {
		t.Errorf("sent_total{email} = %v, want 1", got)
	}
}

// TestStartTLSMandatory: a relay that offers no STARTTLS gets nothing unless starttls
// is explicitly off (allowed for loopback only), and the failure is audited.
func TestStartTLSMandatory(t *testing.T) {
	tests := []struct {
		name     string
		starttls bool
		action   string
	}{
		{"starttls required, relay without it", true, "notify.failed"},
		{"starttls off for a loopback relay", false, "notify.sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newSMTPSink(t, false)
			s := section(sink, nil)
			s.SMTP.StartTLS = tt.starttls
			s.SMTP.Username, s.SMTP.Password = "", "" // no AUTH without TLS
			s.Retry.Attempts = 1
			rec := newRecorder()
			n := start(t, s, sink, clock.NewFake(t0), rec, true)
			n.Notify(context.Background(), printerEvent())
			e := rec.next(t, 1)[0]
			if e.Action != tt.action {
				t.Fatalf("audit action = %q (%v), want %q", e.Action, e.Details, tt.action)
			}
			if tt.action == "notify.failed" {
				if !strings.Contains(e.Details["error"], "STARTTLS") {
					t.Errorf("error = %q, want it to name STARTTLS", e.Details["error"])
				}
				if hs := n.Health(); len(hs) != 1 || hs[0].Code != "notify-failing" {
					t.Errorf("Health() = %v, want one notify-failing", hs)
				}
			}
		})
	}
}

// TestWebhookSigned: the receiver checks the HMAC over the body, the timestamp header
// equals the signed body's sent, and a wrong secret does not verify.
func TestWebhookSigned(t *testing.T) {
	hook := newWebhookReceiver(t, 0)
	rec := newRecorder()
	fc := clock.NewFake(t0.Add(time.Minute))
	n := start(t, section(nil, hook), nil, fc, rec, true)
	n.Notify(context.Background(), printerEvent())
	m := hook.next(t)
	if !m.Signed {
		t.Fatalf("signature did not verify: %s", m.Body)
	}
	if Verify([]byte("another-secret-of-16+"), m.Body, Sign([]byte(hook.Secret), m.Body)) {
		t.Error("Verify accepted a signature under another secret")
	}
	var p payload
	if err := json.Unmarshal(m.Body, &p); err != nil {
		t.Fatal(err)
	}
	want := payload{ID: p.ID, Kind: NewDevice, Title: "New device", Subject: "New device on the network: label-printer-2",
		Object: "asset/mac:00:11:22:33:44:55", Assets: []Asset{{Name: "label-printer-2", Address: "10.20.0.14"}},
		Time: "2026-03-02T09:00:00Z", Sent: fc.Now().Unix()}
	if d := cmp.Diff(want, p); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	if atoi(m.Timestamp) != int(p.Sent) || m.Event != "new_device" {
		t.Errorf("headers: timestamp %q event %q, want %d new_device", m.Timestamp, m.Event, p.Sent)
	}
	e := rec.next(t, 1)[0]
	if e.Action != "notify.sent" || e.Details["recipient"] != "msp" || e.Details["channel"] != "webhook" {
		t.Errorf("audit entry = %+v, want notify.sent to webhook msp", e)
	}
}

// TestRetry: failed POSTs are tried again after doubling waits (on the fake clock), up
// to retry.attempts; the outcome is audited once with the number of attempts.
func TestRetry(t *testing.T) {
	tests := []struct {
		name     string
		fail     int
		action   string
		attempts int
		waited   time.Duration // fake time spent waiting between attempts
	}{
		{"first attempt", 0, "notify.sent", 1, 0},
		{"third attempt", 2, "notify.sent", 3, 30*time.Second + 60*time.Second},
		{"every attempt fails", 10, "notify.failed", 4, 30*time.Second + 60*time.Second + 90*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := newWebhookReceiver(t, tt.fail)
			s := section(nil, hook)
			s.Retry = Retry{Attempts: 4, Backoff: 30e9, MaxBackoff: 90e9}
			fc := clock.NewFake(t0)
			fc.SetAutoAdvance(true)
			rec := newRecorder()
			n := start(t, s, nil, fc, rec, true)
			n.Notify(context.Background(), printerEvent())
			e := rec.next(t, 1)[0]
			if e.Action != tt.action || atoi(e.Details["attempts"]) != tt.attempts {
				t.Errorf("audit = %s after %s attempts, want %s after %d", e.Action, e.Details["attempts"], tt.action, tt.attempts)
			}
			if got := fc.Now().Sub(t0); got != tt.waited {
				t.Errorf("waited %v of fake time, want %v", got, tt.waited)
			}
			if got := testutil.ToFloat64(n.met.retries.WithLabelValues("webhook")); int(got) != tt.attempts-1 {
				t.Errorf("retries_total = %v, want %d", got, tt.attempts-1)
			}
			if tt.action == "notify.failed" && (strings.Contains(e.Details["error"], "query-secret") || !strings.Contains(e.Details["error"], "503")) {
				t.Errorf("error = %q, want the status and not the URL's token", e.Details["error"])
			}
		})
	}
}

// TestRateBound: each recipient gets at most rate.burst at once and one more per
// rate.every; what is over the bound is suppressed, counted and audited.
func TestRateBound(t *testing.T) {
	hook := newWebhookReceiver(t, 0)
	s := section(nil, hook)
	s.Rate = Rate{Burst: 2, Every: 3600e9}
	fc := clock.NewFake(t0)
	rec := newRecorder()
	n := start(t, s, nil, fc, rec, true)
	for range 3 {
		n.Notify(context.Background(), printerEvent())
	}
	actions := map[string]int{}
	for _, e := range rec.next(t, 3) {
		actions[e.Action]++
	}
	if want := map[string]int{"notify.sent": 2, "notify.suppressed": 1}; !cmp.Equal(actions, want) {
		t.Errorf("first three: %v, want %v", actions, want)
	}
	if got := testutil.ToFloat64(n.met.dropped.WithLabelValues("rate")); got != 1 {
		t.Errorf("dropped_total{rate} = %v, want 1", got)
	}
	fc.Advance(time.Hour) // one token back
	n.Notify(context.Background(), printerEvent())
	if e := rec.next(t, 1)[0]; e.Action != "notify.sent" {
		t.Errorf("after an hour: %s, want notify.sent", e.Action)
	}
}

// TestQueueFull: Notify never blocks; past the queue's size events are dropped and
// counted, and those queued are delivered once Run starts.
func TestQueueFull(t *testing.T) {
	hook := newWebhookReceiver(t, 0)
	s := section(nil, hook)
	s.Queue = 2
	rec := newRecorder()
	n := start(t, s, nil, clock.NewFake(t0), rec, false)
	for range 5 {
		n.Notify(context.Background(), printerEvent()) // not running: nothing drains the queue
	}
	if got := testutil.ToFloat64(n.met.dropped.WithLabelValues("queue_full")); got != 3 {
		t.Errorf("dropped_total{queue_full} = %v, want 3", got)
	}
	runNotifier(t, n)
	for _, e := range rec.next(t, 2) {
		if e.Action != "notify.sent" {
			t.Errorf("queued event: %s, want notify.sent", e.Action)
		}
	}
	var nilNotifier *Notifier
	nilNotifier.Notify(context.Background(), printerEvent()) // a nil Notifier drops
}

// TestKindsPerRecipient: a recipient gets only the kinds it lists.
func TestKindsPerRecipient(t *testing.T) {
	hook := newWebhookReceiver(t, 0)
	s := section(nil, hook)
	s.Recipients[0].Events = []string{string(BackupFailed)}
	rec := newRecorder()
	n := start(t, s, nil, clock.NewFake(t0), rec, true)
	n.Notify(context.Background(), printerEvent())
	n.Notify(context.Background(), Event{Kind: BackupFailed, Subject: "The nightly backup failed"})
	e := rec.next(t, 1)[0]
	if e.Details["kind"] != string(BackupFailed) || e.Object != "notification/"+e.Details["id"] {
		t.Errorf("audit = %+v, want only the backup_failed event, object notification/ID", e)
	}
}

// TestNoEPHI: an event built from an asset whose attributes hold patient details
// yields an email and a webhook body with its name and address and nothing else of it.
func TestNoEPHI(t *testing.T) {
	a := inventory.Asset{ID: "mac:00:11:22:33:44:55", Name: "rx-robot", Addresses: []string{"10.20.0.9", "10.20.0.8"},
		Hostname: "rx-robot-jane-doe", Serial: "SN-4711", Tags: []string{"patient-data"},
		AdminOnly: inventory.AdminOnly{Owner: "Dr. Jane Doe", Location: "Room of patient John Roe", EPHI: "yes",
			Notes: "holds prescriptions of John Roe, DOB 1950-01-01"}}
	ephi := []string{"jane-doe", "SN-4711", "Jane Doe", "John Roe", "1950-01-01", "patient-data", "10.20.0.8"}

	sink := newSMTPSink(t, true)
	hook := newWebhookReceiver(t, 0)
	rec := newRecorder()
	n := start(t, section(sink, hook), sink, clock.NewFake(t0), rec, true)
	n.Notify(context.Background(), Event{Kind: NewDevice, Subject: "New device on the network: " + a.Name, Object: "asset/" + a.ID, Assets: []Asset{AssetOf(a)}})

	msgs := map[string]string{"email": mailText(t, sink.Next(t).Data), "webhook": string(hook.next(t).Body)}
	for ch, m := range msgs {
		if !strings.Contains(m, "rx-robot") || !strings.Contains(m, "10.20.0.9") {
			t.Errorf("%s lacks the asset's name and address:\n%s", ch, m)
		}
		for _, s := range ephi {
			if strings.Contains(m, s) {
				t.Errorf("%s carries %q:\n%s", ch, s, m)
			}
		}
	}
	rec.next(t, 2)
}

// TestOneLine: a subject cannot add header lines to an email.
func TestOneLine(t *testing.T) {
	ev := Event{Kind: BackupFailed, Subject: "x\r\nBcc: someone@else.example"}
	if s := ev.mailSubject(); strings.ContainsAny(s, "\r\n") {
		t.Errorf("mailSubject() = %q, want one line", s)
	}
}

// FuzzVerify: Verify never panics, and accepts exactly what Sign makes.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("secret-secret-16"), []byte(`{"kind":"new_device"}`), "sha256=00")
	f.Add([]byte(""), []byte(""), "sha256=")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		if !Verify(secret, body, Sign(secret, body)) {
			t.Fatal("Verify refused Sign's signature")
		}
		if Verify(secret, body, header) && header != Sign(secret, body) && !strings.EqualFold(header, Sign(secret, body)) {
			t.Fatalf("Verify accepted %q", header)
		}
	})
}

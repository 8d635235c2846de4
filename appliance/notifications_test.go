package appliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"github.com/patchgate/patchgate/appliance/backup"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// fakeNoticeSource has one state of each kind: a device overdue, an approved exception
// ending in three days (and one ending in a month, and a requested one: no notices), a
// review past its deadline.
type fakeNoticeSource struct{ now time.Time }

func (f fakeNoticeSource) OverdueAssets(context.Context, int) ([]rollout.Overdue, []rollout.OverdueItem, error) {
	return nil, []rollout.OverdueItem{{AssetID: "mac:1", AssetName: "label-printer", Release: "fw 2.0", Severity: rollout.Critical,
		Deadline: f.now.Add(-time.Hour)}}, nil
}

func (f fakeNoticeSource) OpenExceptions(context.Context) ([]rollout.Exception, error) {
	return []rollout.Exception{
		{ID: 4, State: rollout.ExApproved, Reason: "Mrs Roe's infusion pump stays on 1.9", ExpiresAt: f.now.Add(72 * time.Hour)},
		{ID: 5, State: rollout.ExApproved, ExpiresAt: f.now.Add(30 * 24 * time.Hour)},
		{ID: 6, State: rollout.ExRequested, ExpiresAt: f.now.Add(time.Hour)},
	}, nil
}

func (f fakeNoticeSource) OverdueReviews(context.Context) ([]rollout.Review, error) {
	return []rollout.Review{{ID: 2, RolloutID: 9, Justification: "for Mrs Roe's pharmacy", Overdue: true}}, nil
}

func TestRolloutNotice(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		ev      rollout.Event
		kind    notify.Kind
		subject string
	}{
		{"submit", rollout.Event{Action: "rollout.submit", Object: "rollout/7", Actor: "ana"}, notify.ApprovalWaiting, "Rollout 7 waits for approval"},
		{"threshold pause", rollout.Event{Action: "rollout.pause", Object: "rollout/7", Actor: "system", Details: map[string]string{"reason": "failures 3 > 2"}}, notify.RolloutPaused, "Rollout 7 was paused: failures 3 > 2"},
		{"pause by a person keeps the reason out", rollout.Event{Action: "rollout.pause", Object: "rollout/7", Actor: "ana", Details: map[string]string{"reason": "call Mrs Roe first"}}, notify.RolloutPaused, "Rollout 7 was paused by ana"},
		{"halt", rollout.Event{Action: "rollout.halt", Object: "rollout/7", Actor: "ana"}, notify.RolloutFailed, "Rollout 7 was halted by ana"},
		{"approve is no notice", rollout.Event{Action: "rollout.approve", Object: "rollout/7"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.Time = at
			e, ok := rolloutNotice(tt.ev)
			if ok != (tt.kind != "") || e.Kind != tt.kind || e.Subject != tt.subject || (ok && (e.Object != "rollout/7" || !e.Time.Equal(at))) {
				t.Errorf("rolloutNotice(%s) = %+v, %v; want %s %q", tt.ev.Action, e, ok, tt.kind, tt.subject)
			}
		})
	}
}

type failingSinks struct{ err error }

func (f failingSinks) Apply(context.Context, rollout.Event, func(*sql.Tx) error) error { return f.err }
func (f failingSinks) InventoryEvent(context.Context, inventory.Event) error           { return f.err }

// TestNoticeHooks: events the audit sinks recorded reach a webhook; events they refused
// do not (the change did not happen).
func TestNoticeHooks(t *testing.T) {
	posts := make(chan notify.Event, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p struct {
			Kind    notify.Kind    `json:"kind"`
			Subject string         `json:"subject"`
			Assets  []notify.Asset `json:"assets"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		posts <- notify.Event{Kind: p.Kind, Subject: p.Subject, Assets: p.Assets}
	}))
	t.Cleanup(srv.Close)
	sec := notify.DefaultSection()
	sec.Enabled = true
	sec.Webhooks = []notify.Webhook{{Name: "test", URL: srv.URL, Secret: conf.Secret("0123456789abcdef")}}
	sec.Recipients = []notify.Recipient{{Webhook: "test", Events: []string{"all"}}}
	n, err := notify.New(sec, notify.Options{Clock: clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s := &System{notify: n}

	refused := errors.New("audit refuses writes")
	if err := s.notifyRollout(failingSinks{refused}).Apply(ctx, rollout.Event{Action: "rollout.submit", Object: "rollout/1"}, nil); !errors.Is(err, refused) {
		t.Errorf("refused Apply = %v, want %v", err, refused)
	}
	if err := s.notifyRollout(failingSinks{}).Apply(ctx, rollout.Event{Action: "rollout.submit", Object: "rollout/2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.notifyInventory(failingSinks{}).InventoryEvent(ctx, inventory.Event{Kind: inventory.EventNewDevice, AssetID: "mac:1",
		Asset: "label-printer", Details: map[string]string{"address": "10.20.0.5", "vendor": "Zebra"}}); err != nil {
		t.Fatal(err)
	}
	s.notifyBackup(ctx, backup.Result{OK: true})
	s.notifyBackup(ctx, backup.Result{Scheduled: true, Error: "backup: local /srv/backups: no space left on device"})
	for _, want := range []string{"Rollout 2 waits for approval", "New device on the network: label-printer",
		"Scheduled backup failed: see the audit trail and the status page"} {
		select {
		case got := <-posts:
			if got.Subject != want {
				t.Errorf("webhook got %q, want %q", got.Subject, want)
			}
			if got.Kind == notify.NewDevice && (len(got.Assets) != 1 || got.Assets[0] != (notify.Asset{Name: "label-printer", Address: "10.20.0.5"})) {
				t.Errorf("new device assets = %v, want label-printer 10.20.0.5", got.Assets)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no webhook for %q", want)
		}
	}

	// The state notices: each state once, again only a day later.
	fc := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	w := &noticeWatch{n: n, clock: fc, sent: map[string]time.Time{}, src: fakeNoticeSource{now: fc.Now()},
		health: func() map[string][]health.Problem {
			return map[string][]health.Problem{"tuf-site": {{Code: "tuf-site-role-expiring", Severity: health.Warning, Text: "site repository site: timestamp version 3 expires"}},
				"cache":  {{Code: "cache-disk-low", Severity: health.Warning, Text: "no notice"}},
				"backup": {{Code: "backup-missing", Severity: health.Error, Text: "no backup has succeeded since 2026-02-20T09:00:00Z"}}}
		}}
	wantNotices := []string{"A device is past its critical patch deadline", "Patch exception 4 ends on 2026-03-05 09:00 UTC",
		"Self-approved rollout 9 is past its review deadline: another account must countersign it",
		"No backup has succeeded for more than two backup intervals: see the status page",
		"Signed metadata of the site repository expires soon: see the status page"}
	subjects := func(evs []notify.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Subject)
		}
		return out
	}
	if got := subjects(w.check(ctx)); !slices.Equal(got, wantNotices) {
		t.Errorf("first check raised %q, want %q", got, wantNotices)
	}
	for _, want := range wantNotices {
		select {
		case got := <-posts:
			if got.Subject != want {
				t.Errorf("webhook got %q, want %q", got.Subject, want)
			}
			if got.Kind == notify.DeviceOverdue && (len(got.Assets) != 1 || got.Assets[0] != (notify.Asset{Name: "label-printer"})) {
				t.Errorf("overdue assets = %v, want the name only", got.Assets)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no webhook for %q", want)
		}
	}
	fc.Advance(23 * time.Hour)
	if got := w.check(ctx); len(got) != 0 {
		t.Errorf("a check within the day raised %q again", subjects(got))
	}
	fc.Advance(time.Hour)
	if got := subjects(w.check(ctx)); !slices.Equal(got, wantNotices) {
		t.Errorf("a day later: %q, want %q", got, wantNotices)
	}

	if off := (&System{}); off.notifyRollout(failingSinks{}) != (failingSinks{}) || off.Notifications() != nil {
		t.Error("with notifications off the sinks are not the ones handed in")
	}
}

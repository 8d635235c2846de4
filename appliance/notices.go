package appliance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
)

// Notices of states rather than events: a device past its patch deadline, the site
// repository's TUF metadata near (or past) its expiry, an approved patch exception
// ending soon, a self-approval not countersigned in time. The watch looks every
// noticeEvery; each state (a device × release, a health code of a service, an
// exception, a review) raises at most one notice per noticeRepeat while it lasts.
const (
	noticeEvery     = 15 * time.Minute
	noticeRepeat    = 24 * time.Hour
	exceptionNotice = 7 * 24 * time.Hour // how long before its end an exception is notified
	overdueNotices  = 200                // overdue devices looked at per check, longest overdue first
)

// noticeSource is what the watch reads of the rollout engine.
type noticeSource interface {
	OverdueAssets(ctx context.Context, limit int) ([]rollout.Overdue, []rollout.OverdueItem, error)
	OpenExceptions(ctx context.Context) ([]rollout.Exception, error)
	OverdueReviews(ctx context.Context) ([]rollout.Review, error)
}

// noticeWatch raises the state notices. It is a Service.
type noticeWatch struct {
	n      *notify.Notifier
	clock  clock.Clock
	src    noticeSource                       // nil: no rollout engine
	health func() map[string][]health.Problem // problems by service name

	mu   sync.Mutex
	sent map[string]time.Time // state key → last notice
}

// buildNotices starts the watch when notifications are on.
func (s *System) buildNotices(context.Context) error {
	if s.notify == nil {
		return nil
	}
	w := &noticeWatch{n: s.notify, clock: s.clock, sent: map[string]time.Time{}, health: func() map[string][]health.Problem {
		out := map[string][]health.Problem{}
		for _, svc := range s.services {
			if _, self := svc.(*noticeWatch); !self {
				out[svc.Name()] = svc.Health()
			}
		}
		return out
	}}
	if s.rollout != nil {
		w.src = s.rollout
	}
	s.services = append(s.services, w)
	return nil
}

func (w *noticeWatch) Name() string             { return "notices" }
func (w *noticeWatch) Ready() bool              { return true }
func (w *noticeWatch) Health() []health.Problem { return nil }

// Run checks at once and then every noticeEvery until ctx is done.
func (w *noticeWatch) Run(ctx context.Context) error {
	t := w.clock.NewTicker(noticeEvery)
	defer t.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// due reports whether the state key may raise a notice at now, and if so marks it sent.
func (w *noticeWatch) due(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, ok := w.sent[key]; ok && now.Sub(last) < noticeRepeat {
		return false
	}
	w.sent[key] = now
	return true
}

// forget drops the keys whose notice is older than noticeRepeat (the map stays small).
func (w *noticeWatch) forget(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, t := range w.sent {
		if now.Sub(t) >= noticeRepeat {
			delete(w.sent, k)
		}
	}
}

// check raises a notice for each state that has had none for a day. Subjects are fixed
// text with the appliance's own identifiers: no reason, remark or justification (free
// text that may name a patient) and no device attribute but its name. It returns the
// notices it raised.
func (w *noticeWatch) check(ctx context.Context) []notify.Event {
	now := w.clock.Now()
	w.forget(now)
	var evs []notify.Event
	add := func(key string, ev notify.Event) {
		if w.due(key, now) {
			ev.Time = now
			evs = append(evs, ev)
		}
	}
	if w.src != nil {
		if _, items, err := w.src.OverdueAssets(ctx, overdueNotices); err == nil {
			for _, it := range items {
				name := it.AssetName
				if name == "" {
					name = it.AssetID
				}
				add("overdue/"+it.AssetID+"/"+it.Release, notify.Event{Kind: notify.DeviceOverdue,
					Subject: fmt.Sprintf("A device is past its %s patch deadline", it.Severity), Object: "asset/" + it.AssetID,
					Assets: []notify.Asset{{Name: name}}})
			}
		}
		if exs, err := w.src.OpenExceptions(ctx); err == nil {
			for _, x := range exs {
				if x.State == rollout.ExApproved && x.ExpiresAt.After(now) && x.ExpiresAt.Sub(now) <= exceptionNotice {
					id := strconv.FormatInt(x.ID, 10)
					add("exception/"+id, notify.Event{Kind: notify.ExceptionExpiring, Object: "exception/" + id,
						Subject: "Patch exception " + id + " ends on " + x.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")})
				}
			}
		}
		if vs, err := w.src.OverdueReviews(ctx); err == nil {
			for _, v := range vs {
				id := strconv.FormatInt(v.ID, 10)
				add("review/"+id, notify.Event{Kind: notify.ReviewOverdue, Object: "review/" + id,
					Subject: "Self-approved rollout " + strconv.FormatInt(v.RolloutID, 10) + " is past its review deadline: another account must countersign it"})
			}
		}
	}
	if w.health != nil {
		hs := w.health()
		for _, svc := range slices.Sorted(maps.Keys(hs)) { // a stable order of notices
			for _, p := range hs[svc] {
				if n, ok := healthNotices[p.Code]; ok {
					add("health/"+svc+"/"+p.Code, notify.Event{Kind: n.kind, Object: "service/" + svc, Subject: n.subject})
				}
			}
		}
	}
	for _, ev := range evs {
		w.n.Notify(ctx, ev)
	}
	return evs
}

// healthNotices are the health codes that raise a notice, with its kind and subject
// (the problem's own text stays on the status page). A failed scheduled backup is
// notified as it happens (notifyBackup); a missing one, only here.
var healthNotices = map[string]struct {
	kind    notify.Kind
	subject string
}{
	"tuf-site-role-expiring": {notify.ExpiryNear, "Signed metadata of the site repository expires soon: see the status page"},
	"tuf-site-role-expired":  {notify.ExpiryNear, "Signed metadata of the site repository has expired; devices refuse it: see the status page"},
	"backup-missing":         {notify.BackupFailed, "No backup has succeeded for more than two backup intervals: see the status page"},
}

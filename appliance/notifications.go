package appliance

import (
	"context"
	"database/sql"
	"github.com/patchgate/patchgate/appliance/backup"
	"strings"

	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// buildNotify builds the notifier (email and webhooks, config section notify) when it is
// enabled; every send is recorded in the audit trail. It comes before the services whose
// events it hooks (inventory, rollout): their audit adapters are wrapped so that an event
// that was recorded is also notified.
func (s *System) buildNotify(context.Context) error {
	if !s.cfg.Notify.Enabled {
		return nil
	}
	o := notify.Options{Clock: s.clock, Registerer: s.registry, Logger: s.log.With("svc", "notify")}
	if s.audit != nil {
		o.Audit = s.audit
	}
	n, err := notify.New(s.cfg.Notify, o)
	if err != nil {
		return err
	}
	s.notify = n
	s.services = append(s.services, n)
	return nil
}

// Notifications is the notifier other services hand their events to (Notify never
// blocks). It is nil when notifications are off, and a nil *notify.Notifier drops
// every event, so callers need not check.
func (s *System) Notifications() *notify.Notifier { return s.notify }

// notifyRollout wraps the rollout engine's audit sink: a submitted rollout is an
// approval waiting, a paused one a rollout paused, a halted one a rollout failed.
func (s *System) notifyRollout(sink rollout.EventSink) rollout.EventSink {
	if s.notify == nil {
		return sink
	}
	return rolloutNotices{sink, s.notify}
}

type rolloutNotices struct {
	rollout.EventSink
	n *notify.Notifier
}

// Apply records ev, then notifies it (the notifier does not call back into the engine).
func (r rolloutNotices) Apply(ctx context.Context, ev rollout.Event, fn func(*sql.Tx) error) error {
	if err := r.EventSink.Apply(ctx, ev, fn); err != nil {
		return err
	}
	if e, ok := rolloutNotice(ev); ok {
		r.n.Notify(ctx, e)
	}
	return nil
}

// rolloutNotice is the notification of a rollout event, if it is one. A pause by the
// engine itself says why (a threshold, in the engine's words); a person's reasons are
// free text and stay in the audit trail.
func rolloutNotice(ev rollout.Event) (notify.Event, bool) {
	name := strings.Replace(ev.Object, "rollout/", "Rollout ", 1)
	e := notify.Event{Object: ev.Object, Time: ev.Time}
	switch ev.Action {
	case "rollout.submit":
		e.Kind, e.Subject = notify.ApprovalWaiting, name+" waits for approval"
	case "rollout.pause":
		e.Kind, e.Subject = notify.RolloutPaused, name+" was paused by "+ev.Actor
		if ev.Actor == "system" && ev.Details["reason"] != "" {
			e.Subject = name + " was paused: " + ev.Details["reason"]
		}
	case "rollout.halt":
		e.Kind, e.Subject = notify.RolloutFailed, name+" was halted by "+ev.Actor
	default:
		return notify.Event{}, false
	}
	return e, true
}

// notifyInventory wraps the inventory's audit sink: a new device is notified once it
// is recorded, by name and address only.
func (s *System) notifyInventory(sink inventory.EventSink) inventory.EventSink {
	if s.notify == nil {
		return sink
	}
	return inventoryNotices{sink, s.notify}
}

type inventoryNotices struct {
	inventory.EventSink
	n *notify.Notifier
}

// InventoryEvent records e, then notifies a new device.
func (i inventoryNotices) InventoryEvent(ctx context.Context, e inventory.Event) error {
	if err := i.EventSink.InventoryEvent(ctx, e); err != nil {
		return err
	}
	if e.Kind == inventory.EventNewDevice {
		i.n.Notify(ctx, notify.Event{Kind: notify.NewDevice, Subject: "New device on the network: " + e.Asset,
			Object: "asset/" + e.AssetID, Time: e.Time,
			Assets: []notify.Asset{{Name: e.Asset, Address: e.Details["address"]}}})
	}
	return nil
}

// notifyBackup tells the recipients of backup_failed about a failed backup; a backup
// that worked says nothing. The error stays in the audit trail: it names paths and
// targets, which a message need not carry.
func (s *System) notifyBackup(ctx context.Context, r backup.Result) {
	if s.notify == nil || r.OK {
		return
	}
	what := "Backup failed"
	if r.Scheduled {
		what = "Scheduled backup failed"
	}
	s.notify.Notify(ctx, notify.Event{Kind: notify.BackupFailed, Subject: what + ": see the audit trail and the status page",
		Object: "appliance", Time: r.Finished})
}

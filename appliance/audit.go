package appliance

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/health"
)

// buildAudit opens the audit trail (database tables, append-only file, checkpoint key)
// and puts its state on the status page. Other subsystems record through s.audit.
func (s *System) buildAudit(ctx context.Context) error {
	l, err := audit.Open(ctx, s.db, audit.Options{
		Dir:             s.cfg.AuditDir(),
		CheckpointEvery: s.cfg.Audit.CheckpointEvery.D(),
		Clock:           s.clock,
		Logger:          s.log.With("svc", "audit"),
		Registerer:      s.registry,
	})
	if err != nil {
		return err
	}
	s.audit = l
	s.closers = append(s.closers, l.Close)
	s.AddPanel(auditPanel(l))
	cw := &configWatch{l: l, path: s.opts.ConfigPath, log: s.log.With("svc", "audit")}
	cw.digest = cw.read()
	if err := l.Record(ctx, audit.Entry{Actor: "system", Action: "appliance.start", Object: "config", After: cw.digest,
		Details: map[string]string{"version": s.opts.Build.Version, "config": s.opts.ConfigPath}}); err != nil {
		s.log.Error("audit: the start could not be recorded", "err", err)
	}
	s.services = append(s.services, cw)
	s.configWatch = cw
	return nil
}

// configWatch records config reloads in the audit trail, with the digests of the config
// file before and after (System.reload calls record). It is the Service that puts the
// trail's health on the status page.
type configWatch struct {
	l      *audit.Log
	path   string
	log    *slog.Logger
	digest string // only record touches it after New, from the one SIGHUP handler
}

func (c *configWatch) read() string {
	if c.path == "" {
		return ""
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return ""
	}
	return audit.Digest(b)
}

func (c *configWatch) Name() string             { return "audit" }
func (c *configWatch) Ready() bool              { return true }
func (c *configWatch) Health() []health.Problem { return auditHealth(c.l) }

// Run waits for ctx: the trail is written by its callers.
func (c *configWatch) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// record writes a config.reload record; failed names the services that did not take
// the reload up (a "failed" detail when there are any).
func (c *configWatch) record(ctx context.Context, failed []string) {
	after := c.read()
	e := audit.Entry{Actor: "system", Action: "config.reload", Object: "config", Before: c.digest, After: after,
		Details: map[string]string{"config": c.path, "changed": strconv.FormatBool(after != c.digest)}}
	if len(failed) > 0 {
		e.Details["failed"] = strings.Join(failed, ",")
	}
	if err := c.l.Record(ctx, e); err != nil {
		c.log.Error("audit: config reload not recorded", "err", err)
	}
	c.digest = after
}

// auditHealth reports a trail that refuses writes as a critical problem.
func auditHealth(l *audit.Log) []health.Problem {
	if p := l.Problem(); p != nil {
		return []health.Problem{{Code: "audit-broken", Severity: health.Error, Text: "the audit trail refuses writes, so every audited action fails: " + p.Error()}}
	}
	return nil
}

// auditEntry is the audit skeleton (who, how, from where) of an admin request.
func auditEntry(r *http.Request) audit.Entry {
	return auth.FromContext(r.Context()).Entry("", "", nil)
}

// Adapters from the subsystems' own event-sink interfaces to the audit trail. Each takes
// who/how/from where from the request's principal when the event comes from an admin
// request, else records the subsystem as the actor.

// principalEntry starts an entry for actor, filled from ctx's principal when it is that
// actor.
func principalEntry(ctx context.Context, actor string) audit.Entry {
	if p := auth.FromContext(ctx); p != nil && p.User == actor {
		return p.Entry("", "", nil)
	}
	if actor == "" {
		actor = "system"
	}
	return audit.Entry{Actor: actor}
}

func copyDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}

// rolloutAudit is rollout.EventSink: the engine's transitions, approvals, forced stages
// and deployments, each recorded in the transaction of the change.
type rolloutAudit struct{ l *audit.Log }

func (a rolloutAudit) Apply(ctx context.Context, ev rollout.Event, fn func(*sql.Tx) error) error {
	e := principalEntry(ctx, ev.Actor)
	e.Action, e.Object, e.Details, e.After = ev.Action, ev.Object, copyDetails(ev.Details), ev.After
	_, err := a.l.Apply(ctx, e, fn)
	return err
}

// inventoryAudit is inventory.EventSink: new and changed devices, changed firmware.
type inventoryAudit struct{ l *audit.Log }

func (a inventoryAudit) InventoryEvent(ctx context.Context, ev inventory.Event) error {
	e := audit.Entry{Actor: "system:" + ev.Actor}
	if ev.Request != nil {
		if p := auth.FromContext(ev.Request.Context()); p != nil {
			e = p.Entry("", "", nil)
		} else {
			e.Actor = ev.Actor
		}
	}
	if ev.Actor == "" {
		e.Actor = "system:inventory"
	}
	e.Action, e.Object, e.Details = ev.Kind, "asset/"+ev.AssetID, copyDetails(ev.Details)
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	if ev.Asset != "" {
		e.Details["asset"] = ev.Asset
	}
	e.Before, e.After = digestOf(ev.Before), digestOf(ev.After)
	return a.l.Record(ctx, e)
}

// digestOf keeps a digest as it is and digests anything else.
func digestOf(s string) string {
	if s == "" || strings.HasPrefix(s, "sha256:") {
		return s
	}
	return audit.Digest(s)
}

// resolverAudit is resolver.EventSink: bursts of blocked DNS queries by a device.
type resolverAudit struct {
	l   *audit.Log
	log *slog.Logger
}

func (a resolverAudit) Blocked(b resolver.BlockedBurst) {
	obj := "client/" + b.Client.String()
	if b.Asset != "" {
		obj = "asset/" + b.Asset
	}
	err := a.l.Record(context.Background(), audit.Entry{Actor: "system:resolver", Source: b.Client.String(), Action: "dns.blocked_burst", Object: obj,
		Details: map[string]string{"segment": b.Segment, "name": b.Name, "type": b.Type, "reason": b.Reason,
			"count": strconv.Itoa(b.Count), "first": b.First.UTC().Format(time.RFC3339), "last": b.Last.UTC().Format(time.RFC3339)}})
	if err != nil {
		a.log.Error("audit: blocked DNS burst not recorded", "err", err)
	}
}

// cacheAudit records the cache's failed integrity checks: upstream bytes refused,
// downloads given up because the upstream did not deliver (with the reason), stored
// objects found damaged.
type cacheAudit struct {
	l   *audit.Log
	log *slog.Logger
}

func (a cacheAudit) Integrity(ev cache.IntegrityEvent) {
	obj := "object/" + ev.Key
	if ev.Repo != "" {
		obj = "target/" + ev.Repo + "/" + ev.Path
	}
	details := map[string]string{"key": ev.Key, "detail": ev.Detail}
	if ev.Reason != "" {
		details["reason"] = ev.Reason
	}
	err := a.l.Record(context.Background(), audit.Entry{Actor: "system:cache", Action: "cache.integrity." + ev.Kind, Object: obj,
		Details: details})
	if err != nil {
		a.log.Error("audit: cache integrity failure not recorded", "err", err, "kind", ev.Kind)
	}
}

// linkAuditSinks connects the subsystems built after the audit trail to it.
func (s *System) linkAuditSinks() {
	if s.resolver != nil {
		s.resolver.SetEventSink(resolverAudit{s.audit, s.log.With("svc", "audit")})
	}
}

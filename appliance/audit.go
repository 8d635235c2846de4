package appliance

import (
	"context"
	"net/http"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/web"
)

// buildAudit opens the audit trail (database tables, append-only file, checkpoint key)
// and puts its state on the status page. Other subsystems record through s.audit.
func (s *System) buildAudit(ctx context.Context) error {
	l, err := audit.Open(ctx, s.db, audit.Options{
		Dir:             s.cfg.Audit.Path(s.cfg.State),
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
	s.AddPanel(auditPanel{l})
	return nil
}

type auditPanel struct{ l *audit.Log }

func (p auditPanel) Panel(context.Context) web.Panel {
	return web.Panel{ID: "audit", Title: "Audit trail", Data: p.l.Stats()}
}

// auditEntry is the audit skeleton (who, how, from where) of an admin request.
func auditEntry(r *http.Request) audit.Entry {
	return auth.FromContext(r.Context()).Entry("", "", nil)
}

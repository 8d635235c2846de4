package appliance

import (
	"context"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/backup"
	"github.com/patchgate/patchgate/appliance/forward"
	"github.com/patchgate/patchgate/appliance/gateway"
	"github.com/patchgate/patchgate/appliance/resolver"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/appliance/web"
)

// The services expose their state as plain data (a Status method of their own package)
// and know nothing of the status page; the panels below turn that data into the page's
// boxes. Each panel's ID names its template, web/templates/panels/ID.html.

// panel is a web.PanelSource over a service's status data. data must be safe for
// concurrent use and quick: the page is rendered on every request.
type panel struct {
	id, title string
	data      func(context.Context) any
}

// Panel implements web.PanelSource.
func (p panel) Panel(ctx context.Context) web.Panel {
	return web.Panel{ID: p.id, Title: p.title, Data: p.data(ctx)}
}

// dnsPanel shows the resolver: counts, upstreams, lists, the 20 most blocked names with
// the devices asking for them, and the 20 latest queries.
func dnsPanel(srv *resolver.Server) panel {
	return panel{"dns", "DNS (allowlisting resolver)", func(context.Context) any { return srv.Status(20, 20) }}
}

// gatewayPanel shows the egress ruleset, its counters and the latest denied flows.
func gatewayPanel(gw *gateway.Gateway) panel {
	return panel{"gateway", "Gateway", func(context.Context) any { return gw.Status() }}
}

// rolloutPanel shows the rollouts' progress, the rings' windows and overdue devices.
func rolloutPanel(e *rollout.Engine) panel {
	return panel{"rollout", "Rollouts", func(ctx context.Context) any { return e.Status(ctx) }}
}

// selfUpdatePanel shows the appliance's installed, available and requested versions.
func selfUpdatePanel(svc *selfupdate.Service) panel {
	return panel{"selfupdate", "Appliance version", func(context.Context) any { return svc.Status() }}
}

// auditPanel shows the audit trail's length, head and checkpoints.
func auditPanel(l *audit.Log) panel {
	return panel{"audit", "Audit trail", func(context.Context) any { return l.Stats() }}
}

// backupPanel shows the last backup, the next one due and the last restore drill.
func backupPanel(svc *backup.Service) panel {
	return panel{"backup", "Backup", func(context.Context) any { return svc.Status() }}
}

// vendorHostPanel shows the mapped vendor host names, the site CA's fingerprint and the
// 50 latest "asked for, not available" rows.
func vendorHostPanel(v *vendorhost.Server) panel {
	return panel{"vendorhost", "Vendor hosts (devices without an agent)", func(context.Context) any { return v.Status(50) }}
}

// siemPanel shows each SIEM target: cursor, backlog, last batch sent, failure.
func siemPanel(svc *forward.Service) panel {
	return panel{"siem", "SIEM forwarding", func(context.Context) any { return svc.Status() }}
}

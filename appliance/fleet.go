package appliance

import (
	"context"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/fleet"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/metric"
	"github.com/patchgate/patchgate/tuf"
)

// MetricsGatherer is what /metrics serves: the System's registry with the site label
// (config key site) put on every metric, so that one Prometheus holds many sites
// apart; without a site it is the registry itself.
func (s *System) MetricsGatherer() prometheus.Gatherer {
	if s.cfg.Site == "" {
		return s.registry
	}
	return metric.WithLabels(s.registry, prometheus.Labels{"site": string(s.cfg.Site)})
}

// buildFleet makes the link to the parent appliance when the parent section is set:
// it enrols, checks in, measures the clock skew and puts the child's credential on
// every request the parent's mirrors make (mirrorConfig). The parent's repositories
// are already in tuf.repositories (the config fills them).
func (s *System) buildFleet(context.Context) error {
	if !s.cfg.Parent.Enabled() {
		return nil
	}
	site := string(s.cfg.Site)
	if site == "" {
		site, _ = os.Hostname()
	}
	l, err := fleet.New(fleet.Options{Parent: s.cfg.Parent, Site: site, Version: s.opts.Build.Version,
		StateDir: s.cfg.State.Path("fleet"), Clock: s.clock, Logger: s.log.With("svc", "fleet"), Registerer: s.registry,
		Expiry: s.parentExpiry})
	if err != nil {
		return err
	}
	s.fleet = l
	s.services = append(s.services, l)
	s.AddPanel(fleetPanel{l})
	return nil
}

// parentExpiry is when the first of the parent's repositories' verified metadata
// expires; zero when none is verified.
func (s *System) parentExpiry() time.Time {
	var first time.Time
	if s.updates == nil {
		return first
	}
	for _, m := range s.updates.mirrors {
		st := m.Status()
		if !s.cfg.Parent.Serves(tuf.Repository{MetadataURL: st.MetadataURL, TargetsURL: st.TargetsURL}) || !st.Verified {
			continue
		}
		if first.IsZero() || st.Expires.Before(first) {
			first = st.Expires
		}
	}
	return first
}

// mirrorConfig is repository r's mirror configuration; requests to the parent carry
// the child's credential.
func (s *System) mirrorConfig(r tuf.Repository, root []byte) tuf.MirrorConfig {
	mc := r.MirrorConfig(root, s.cfg.State.Path("tuf", r.Name))
	if s.fleet != nil && s.cfg.Parent.Serves(r) {
		c := tuf.NewHTTPClient()
		c.Transport = s.fleet.Transport(c.Transport)
		mc.HTTPClient = c
	}
	return mc
}

// shaperClientKey is the shaper's client: a downstream appliance (any agent) by its
// credential's id, so that children behind one address each get one fair share;
// everything else by its address (""). An invalid credential only gets a key of its
// own: the gate refuses it before a byte is sent.
func shaperClientKey(r *http.Request) string {
	if cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer pga1."); ok {
		if id, _, ok := strings.Cut(cred, "."); ok && id != "" && len(id) <= 64 {
			return "agent:" + id
		}
	}
	return ""
}

// fleetPanel shows the link to the parent.
type fleetPanel struct{ l *fleet.Link }

func (p fleetPanel) Panel(context.Context) web.Panel {
	return web.Panel{ID: "parent", Title: "Parent appliance", Data: p.l.Status()}
}

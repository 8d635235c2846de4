package appliance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/patchgate/patchgate/appliance/web"
)

// Build describes the running binary; it is what the status page shows.
type Build = web.Build

// buildWeb mounts the status page, health probes and metrics on the admin listener.
func (s *System) buildWeb(context.Context) error {
	pages, err := web.NewPages(s, s.log)
	if err != nil {
		return err
	}
	mux := s.admin.mux
	pages.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.MetricsGatherer(), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
	}))
	return nil
}

// readyz answers 200 when every service is ready, else 503 naming those that are not.
func (s *System) readyz(w http.ResponseWriter, r *http.Request) {
	var waiting []string
	for _, svc := range s.services {
		if !svc.Ready() {
			waiting = append(waiting, svc.Name())
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(waiting) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(waiting, ", "))
		return
	}
	fmt.Fprintln(w, "ready")
}

// AddPanel puts a subsystem's panel on the status page, after those added before it.
func (s *System) AddPanel(p web.PanelSource) { s.panels = append(s.panels, p) }

// Status is what the status page shows; System implements web.StatusSource.
func (s *System) Status(ctx context.Context) web.Status {
	now := s.clock.Now()
	host, _ := os.Hostname()
	st := web.Status{
		Build:    s.opts.Build,
		Hostname: host,
		Now:      now,
		Started:  s.started,
		Uptime:   web.Duration(now.Sub(s.started)),
		Ready:    s.Ready(),
	}
	for _, svc := range s.services {
		st.Services = append(st.Services, web.Service{Name: svc.Name(), Ready: svc.Ready(), Health: svc.Health()})
	}
	for _, p := range s.panels {
		st.Panels = append(st.Panels, p.Panel(ctx))
	}
	if s.opts.LogRing != nil {
		lines := s.opts.LogRing.Lines()
		// Newest first, at most 50.
		for i := len(lines) - 1; i >= 0 && len(st.Logs) < 50; i-- {
			st.Logs = append(st.Logs, lines[i])
		}
	}
	return st
}

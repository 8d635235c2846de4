package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/patchgate/patchgate/health"
)

// httpService serves one listener. It is a Service.
type httpService struct {
	name  string
	ln    net.Listener
	srv   *http.Server
	mux   *http.ServeMux
	ready atomic.Bool
}

// buildHTTP binds the admin and distribution listeners (or takes them from systemd
// socket activation) so that a port in use fails New, not Run.
func (s *System) buildHTTP(context.Context) error {
	passed, err := activation.ListenersWithNames()
	if err != nil {
		return fmt.Errorf("socket activation: %w", err)
	}
	for _, l := range []struct {
		dst  **httpService
		name string
		addr string
	}{
		{&s.admin, "admin", s.cfg.Admin.Listen},
		{&s.dist, "distribution", s.cfg.Distribution.Listen},
	} {
		svc, err := newHTTPService(l.name, l.addr, passed[l.name], s.log)
		if err != nil {
			return err
		}
		*l.dst = svc
		s.closers = append(s.closers, svc.ln.Close)
	}
	s.filterSources()
	s.dist.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Patchgate distribution point. Updates are under /repos/{repo}/.")
	})
	return nil
}

func newHTTPService(name, addr string, passed []net.Listener, log *slog.Logger) (*httpService, error) {
	var ln net.Listener
	if len(passed) > 0 {
		ln = passed[0]
	} else {
		var err error
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("%s listener: address %s is already in use (another patchgate, or change %s.listen)", name, addr, name)
			}
			return nil, fmt.Errorf("%s listener: %w", name, err)
		}
	}
	mux := http.NewServeMux()
	return &httpService{
		name: name,
		ln:   ln,
		mux:  mux,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.With("listener", name).Handler(), slog.LevelWarn),
		},
	}, nil
}

func (h *httpService) Name() string { return h.name + "-http" }

// Addr is the bound address.
func (h *httpService) Addr() string { return h.ln.Addr().String() }

func (h *httpService) Ready() bool { return h.ready.Load() }

func (h *httpService) Health() []health.Problem { return nil }

// Run serves until ctx is done, then shuts down gracefully: new connections are
// refused, requests in flight may finish until the System's shutdown deadline.
func (h *httpService) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	h.ready.Store(true)
	select {
	case err := <-errc:
		h.ready.Store(false)
		return fmt.Errorf("serve %s: %w", h.Addr(), err)
	case <-ctx.Done():
	}
	h.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(sctx); err != nil {
		h.srv.Close()
	}
	<-errc
	return nil
}

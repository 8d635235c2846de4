package appliance

import (
	"net/http"

	"github.com/patchgate/patchgate/cache"
)

// leanDistribution puts the cache's Lean loop in front of the distribution listener:
// plain GETs and HEADs of small targets held in memory are answered on each
// connection's own loop, through the listener's whole handler chain (read at each
// request: vendor hosts set it later); every other request goes to net/http as before.
func (s *System) leanDistribution(h *cache.Handler) {
	srv := s.dist.srv
	l := &cache.Lean{
		Handler:           func() http.Handler { return srv.Handler },
		Small:             h.Small,
		IdleTimeout:       srv.IdleTimeout,
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
	}
	s.dist.ln = l.Listener(s.dist.ln)
}

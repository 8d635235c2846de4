package appliance

import (
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/segment"
)

// listenerServices maps a listener to the segment services that may reach it: the admin
// UI and /metrics only where a segment lists admin; the distribution listener (targets
// and the agent API) where it lists distribution or agent.
var listenerServices = map[string][]string{
	"admin":        {segment.ServiceAdmin},
	"distribution": {segment.ServiceDistribution, segment.ServiceAgent},
}

// allowedSources returns whether a client address may connect to the named listener:
// when its segment in segs offers one of the listener's services. It returns false when
// no segments are configured (then nothing is filtered: the listen address alone
// decides). Loopback is always allowed, for local tools and health checks.
func allowedSources(segs *segment.Table, listener string) (func(netip.Addr) bool, bool) {
	if segs.Len() == 0 {
		return nil, false
	}
	svcs := listenerServices[listener]
	return func(a netip.Addr) bool {
		if a.IsLoopback() {
			return true
		}
		seg, ok := segs.Lookup(a)
		return ok && slices.ContainsFunc(svcs, seg.Serves)
	}, true
}

// sourceFilter is a net.Listener that closes, at once, connections from addresses outside
// those it allows, so the admin UI answers only the management segment even when
// bound to every address.
type sourceFilter struct {
	net.Listener
	allow   func(netip.Addr) bool // given an unmapped address
	refused prometheus.Counter
	log     *slog.Logger

	mu      sync.Mutex
	lastLog time.Time
}

func (f *sourceFilter) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if f.allowed(c.RemoteAddr()) {
			return c, nil
		}
		c.Close()
		f.refused.Inc()
		f.mu.Lock()
		if time.Since(f.lastLog) > 10*time.Second { // at most one line per 10 s per listener
			f.lastLog = time.Now()
			f.log.Warn("refused a connection from outside the segments this listener serves", "from", c.RemoteAddr().String())
		}
		f.mu.Unlock()
	}
}

func (f *sourceFilter) allowed(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return f.allow(ap.Addr().Unmap())
}

// filterSources wraps each listener with its segment source filter where segments are
// configured.
func (s *System) filterSources() {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "patchgate_system_connections_refused_total",
		Help: "Connections closed because they came from outside the segments the listener serves.",
	}, []string{"listener"})
	s.registry.MustRegister(refused)
	for _, h := range []*httpService{s.admin, s.dist} {
		allow, ok := allowedSources(s.segments, h.name)
		refused.WithLabelValues(h.name)
		if !ok {
			continue
		}
		h.ln = &sourceFilter{Listener: h.ln, allow: allow, refused: refused.WithLabelValues(h.name), log: s.log.With("listener", h.name)}
	}
}

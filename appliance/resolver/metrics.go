package resolver

import (
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// metrics are the resolver's Prometheus metrics; README.md lists them.
type metrics struct {
	queries       *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	cacheEntries  prometheus.GaugeFunc
	upstreamErrs  *prometheus.CounterVec
	upstreamUp    *prometheus.GaugeVec
	prefetches    prometheus.Counter
	dropped       *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	listEntries   *prometheus.GaugeVec
	events        prometheus.Counter
	tcpConns      prometheus.Gauge
	rebinding     *prometheus.CounterVec
	fast          [4][6]prometheus.Counter // queries by decision × common rcode
	fastLatency   [4]prometheus.Observer
	decisionNames [4]string
}

func newMetrics(reg prometheus.Registerer, entries func() float64) (*metrics, error) {
	s := metric.New(reg, "resolver")
	m := &metrics{
		queries: s.CounterVec("queries_total", "DNS queries answered, by decision (allowed, rewritten, blocked, refused) and response code.", "decision", "rcode"),
		latency: s.HistogramVec("query_duration_seconds", "Time from reading a query to writing its answer, by decision.",
			[]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}, "decision"),
		cacheHits:    s.Counter("cache_hits_total", "Allowed queries answered from the answer cache."),
		cacheMisses:  s.Counter("cache_misses_total", "Allowed queries that had to be forwarded upstream."),
		cacheEntries: s.GaugeFunc("cache_entries", "Answers in the cache (expired ones not yet dropped included).", entries),
		upstreamErrs: s.CounterVec("upstream_errors_total", "Failed upstream exchanges, by upstream and kind (timeout, network, rcode, bad_answer).", "upstream", "kind"),
		upstreamUp:   s.GaugeVec("upstream_up", "1 when the upstream answers (health checks and queries), else 0.", "upstream"),
		prefetches:   s.Counter("prefetches_total", "Popular cached answers refreshed before they expired."),
		dropped:      s.CounterVec("dropped_total", "Packets not answered, by reason (malformed, response, overload, tcp_limit).", "reason"),
		reloads:      s.CounterVec("list_reloads_total", "List (re)loads, by result (ok, error: the previous lists were kept).", "result"),
		listEntries:  s.GaugeVec("list_entries", "Entries (names and wildcards) in each loaded list.", "list"),
		events:       s.Counter("blocked_events_total", "Blocked-query bursts (one device, one name, one event window) reported."),
		tcpConns:     s.Gauge("tcp_connections", "Open client TCP connections."),
		rebinding:    s.CounterVec("rebinding_blocked_total", "Answers for public names that lost site addresses (DNS rebinding), by segment.", "segment"),
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("resolver: register metrics: %w", err)
	}
	for d := range m.fast {
		name := Decision(d).String()
		m.decisionNames[d] = name
		m.fastLatency[d] = m.latency.WithLabelValues(name)
		for rc := range m.fast[d] {
			m.fast[d][rc] = m.queries.WithLabelValues(name, dns.RcodeToString[rc])
		}
	}
	return m, nil
}

// query counts one answered query.
func (m *metrics) query(d Decision, rcode int, seconds float64) {
	if rcode >= 0 && rcode < len(m.fast[d]) {
		m.fast[d][rcode].Inc()
	} else {
		rc, ok := dns.RcodeToString[rcode]
		if !ok {
			rc = "other"
		}
		m.queries.WithLabelValues(m.decisionNames[d], rc).Inc()
	}
	m.fastLatency[d].Observe(seconds)
}

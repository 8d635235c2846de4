package resolver

import (
	"fmt"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
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
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_resolver_queries_total",
			Help: "DNS queries answered, by decision (allowed, rewritten, blocked, refused) and response code.",
		}, []string{"decision", "rcode"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "patchgate_resolver_query_duration_seconds",
			Help:    "Time from reading a query to writing its answer, by decision.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"decision"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_resolver_cache_hits_total",
			Help: "Allowed queries answered from the answer cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_resolver_cache_misses_total",
			Help: "Allowed queries that had to be forwarded upstream.",
		}),
		cacheEntries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "patchgate_resolver_cache_entries",
			Help: "Answers in the cache (expired ones not yet dropped included).",
		}, entries),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_resolver_upstream_errors_total",
			Help: "Failed upstream exchanges, by upstream and kind (timeout, network, rcode, bad_answer).",
		}, []string{"upstream", "kind"}),
		upstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_resolver_upstream_up",
			Help: "1 when the upstream answers (health checks and queries), else 0.",
		}, []string{"upstream"}),
		prefetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_resolver_prefetches_total",
			Help: "Popular cached answers refreshed before they expired.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_resolver_dropped_total",
			Help: "Packets not answered, by reason (malformed, response, overload, tcp_limit).",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_resolver_list_reloads_total",
			Help: "List (re)loads, by result (ok, error: the previous lists were kept).",
		}, []string{"result"}),
		listEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_resolver_list_entries",
			Help: "Entries (names and wildcards) in each loaded list.",
		}, []string{"list"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_resolver_blocked_events_total",
			Help: "Blocked-query bursts (one device, one name, one event window) reported.",
		}),
		tcpConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_resolver_tcp_connections",
			Help: "Open client TCP connections.",
		}),
		rebinding: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_resolver_rebinding_blocked_total",
			Help: "Answers for public names that lost site addresses (DNS rebinding), by segment.",
		}, []string{"segment"}),
	}
	for _, c := range []prometheus.Collector{m.rebinding, m.queries, m.latency, m.cacheHits, m.cacheMisses, m.cacheEntries,
		m.upstreamErrs, m.upstreamUp, m.prefetches, m.dropped, m.reloads, m.listEntries, m.events, m.tcpConns} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("resolver: register metrics: %w", err)
		}
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

package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics. Decisions and set sizes come from the
// kernel (the table's counters and sets, read every stats interval); the rest are
// counted as things happen.
type metrics struct {
	applies      *prometheus.CounterVec
	applied      prometheus.Gauge
	learned      *prometheus.CounterVec
	learnBatches prometheus.Histogram
	learnLatency prometheus.Histogram
	learnErrors  prometheus.Counter
	ignored      prometheus.Counter
	lookups      *prometheus.CounterVec
	logged       *prometheus.CounterVec

	mu    sync.Mutex
	stats stats // last read from the kernel
}

// stats is one reading of the table's counters and set sizes.
type stats struct {
	counters map[string]counterValue
	sizes    map[string]int // by set name
	sets     []Set
	segments []string
}

var (
	decisionsDesc = prometheus.NewDesc("patchgate_gateway_decisions_total",
		"Verdicts of the egress policy on new flows, from the nftables counters: path is output (the appliance's own traffic) or forward (a segment's), decision allowed or denied. Replies are not counted.",
		[]string{"path", "segment", "decision"}, nil)
	setDesc = prometheus.NewDesc("patchgate_gateway_set_elements",
		"Addresses in a learned nftables set now, by segment (empty for the appliance itself) and family.",
		[]string{"segment", "family"}, nil)
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_gateway_applies_total",
			Help: "Atomic applications of the whole ruleset (start, reload, repair), by result: ok or error.",
		}, []string{"result"}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_gateway_ruleset_applied",
			Help: "1 when the ruleset is in place, 0 when it could not be applied.",
		}),
		learned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_gateway_learned_addresses_total",
			Help: "Addresses written into a learned set (new or with a longer timeout), by segment (empty for the appliance itself).",
		}, []string{"segment"}),
		learnBatches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "patchgate_gateway_learn_batch_elements",
			Help:    "Set elements written per netlink batch of learned addresses.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		learnLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "patchgate_gateway_learn_seconds",
			Help:    "Time from a DNS answer handed to the gateway to its addresses being in the set.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 3, 10),
		}),
		learnErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_gateway_learn_errors_total",
			Help: "Netlink batches of learned addresses that failed.",
		}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_gateway_answers_ignored_total",
			Help: "DNS answers for segments the gateway does not route for.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_gateway_egress_lookups_total",
			Help: "Look-ups of egress host names (repositories, time servers), by result: ok or error.",
		}, []string{"result"}),
		logged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_gateway_denied_logged_total",
			Help: "Denied flows logged (read back from NFLOG, after the per-segment rate limit), by segment (empty for the appliance itself).",
		}, []string{"segment"}),
	}
	for _, c := range []prometheus.Collector{m.applies, m.applied, m.learned, m.learnBatches,
		m.learnLatency, m.learnErrors, m.ignored, m.lookups, m.logged, m} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) setStats(s stats) {
	m.mu.Lock()
	m.stats = s
	m.mu.Unlock()
}

// Describe implements prometheus.Collector for the kernel-read metrics.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- decisionsDesc
	ch <- setDesc
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	s := m.stats
	m.mu.Unlock()
	if s.counters == nil {
		return
	}
	counter := func(name, path, seg, decision string) {
		ch <- prometheus.MustNewConstMetric(decisionsDesc, prometheus.CounterValue,
			float64(s.counters[name].Packets), path, seg, decision)
	}
	counter(outputAllowed, "output", "", "allowed")
	counter(outputDenied, "output", "", "denied")
	counter(forwardOtherDenied, "forward", "", "denied")
	for _, seg := range s.segments {
		counter(segAllowed(seg), "forward", seg, "allowed")
		counter(segDenied(seg), "forward", seg, "denied")
	}
	for _, set := range s.sets {
		if !set.Timeout {
			continue
		}
		fam := "ipv4"
		if set.V6 {
			fam = "ipv6"
		}
		ch <- prometheus.MustNewConstMetric(setDesc, prometheus.GaugeValue, float64(s.sizes[set.Name]), set.Segment, fam)
	}
}

package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
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
	decisions    *prometheus.Desc // read from the kernel
	sets         *prometheus.Desc

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

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "gateway")
	m := &metrics{
		applies:      s.CounterVec("applies_total", "Atomic applications of the whole ruleset (start, reload, repair), by result: ok or error.", "result"),
		applied:      s.Gauge("ruleset_applied", "1 when the ruleset is in place, 0 when it could not be applied."),
		learned:      s.CounterVec("learned_addresses_total", "Addresses written into a learned set (new or with a longer timeout), by segment (empty for the appliance itself).", "segment"),
		learnBatches: s.Histogram("learn_batch_elements", "Set elements written per netlink batch of learned addresses.", prometheus.ExponentialBuckets(1, 4, 7)),
		learnLatency: s.Histogram("learn_seconds", "Time from a DNS answer handed to the gateway to its addresses being in the set.", prometheus.ExponentialBuckets(0.00005, 3, 10)),
		learnErrors:  s.Counter("learn_errors_total", "Netlink batches of learned addresses that failed."),
		ignored:      s.Counter("answers_ignored_total", "DNS answers for segments the gateway does not route for."),
		lookups:      s.CounterVec("egress_lookups_total", "Look-ups of egress host names (repositories, time servers), by result: ok or error.", "result"),
		logged:       s.CounterVec("denied_logged_total", "Denied flows logged (read back from NFLOG, after the per-segment rate limit), by segment (empty for the appliance itself).", "segment"),
		decisions: s.Desc("decisions_total",
			"Verdicts of the egress policy on new flows, from the nftables counters: path is output (the appliance's own traffic) or forward (a segment's), decision allowed or denied. Replies are not counted.",
			"path", "segment", "decision"),
		sets: s.Desc("set_elements", "Addresses in a learned nftables set now, by segment (empty for the appliance itself) and family.", "segment", "family"),
	}
	s.Register(m) // the kernel-read metrics
	if err := s.Err(); err != nil {
		return nil, err
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
	ch <- m.decisions
	ch <- m.sets
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
		ch <- prometheus.MustNewConstMetric(m.decisions, prometheus.CounterValue,
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
		ch <- prometheus.MustNewConstMetric(m.sets, prometheus.GaugeValue, float64(s.sizes[set.Name]), set.Segment, fam)
	}
}

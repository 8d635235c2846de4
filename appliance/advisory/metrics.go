package advisory

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	fetches     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	imports     *prometheus.CounterVec
	findings    *prometheus.GaugeVec
	matchRuns   prometheus.Counter
	pending     *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "advisory")
	m := &metrics{
		fetches:     s.CounterVec("fetches_total", "Feed fetches by result (ok, refused).", "feed", "result"),
		lastSuccess: s.GaugeVec("last_success_timestamp_seconds", "When each feed was last fetched whole and verified (Unix time).", "feed"),
		imports:     s.CounterVec("imports_total", "Offline imports by result (ok, refused).", "result"),
		findings:    s.GaugeVec("findings", "Findings now, by state (open, ambiguous) and severity; exploited ones also as severity \"exploited\".", "state", "severity"),
		matchRuns:   s.Counter("match_runs_total", "Times the inventory was matched against the advisories."),
		pending:     s.GaugeVec("pending_documents", "CSAF documents changed (changes.csv) but left for the next fetch, beyond max_documents.", "feed"),
	}
	return m, s.Err()
}

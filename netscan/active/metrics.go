package active

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// Metrics counts what scans do. Create it once per registry; it is safe
// for concurrent use.
type Metrics struct {
	packets  *prometheus.CounterVec
	scans    *prometheus.CounterVec
	duration prometheus.Histogram
	live     prometheus.Gauge
	excluded prometheus.Counter
}

// NewMetrics registers the active scan metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	s := metric.New(reg, "netscan")
	m := &Metrics{
		packets:  s.CounterVec("probe_packets_total", "Packets sent by active probes (as charged to the rate caps), by probe.", "probe"),
		scans:    s.CounterVec("scans_total", "Active scans run, by result (ok, error, canceled).", "result"),
		duration: s.Histogram("scan_duration_seconds", "Wall time of active scans.", []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}),
		live:     s.Gauge("live_hosts", "Live hosts found by the last active scan."),
		excluded: s.Counter("excluded_hosts_total", "Addresses skipped because an exclusion matched."),
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

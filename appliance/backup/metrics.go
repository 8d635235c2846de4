package backup

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// metrics are the service's Prometheus metrics; README.md lists them.
type metrics struct {
	lastSuccess prometheus.Gauge
	failures    prometheus.Counter
	size        prometheus.Gauge
	duration    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "backup")
	m := &metrics{
		lastSuccess: s.Gauge("last_success_timestamp_seconds", "When the last backup reached every target (Unix time), 0 before the first."),
		failures:    s.Counter("failures_total", "Backups that failed (not written to every target)."),
		size:        s.Gauge("size_bytes", "Size of the last successful encrypted archive."),
		duration:    s.Histogram("duration_seconds", "Time to make and store one backup.", []float64{1, 5, 15, 60, 300, 900, 3600}),
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

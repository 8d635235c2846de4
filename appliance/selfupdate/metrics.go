package selfupdate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// metrics are the service's Prometheus metrics; README.md lists them.
type metrics struct {
	available, staged prometheus.Gauge
	requests          *prometheus.CounterVec
	results           *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "selfupdate")
	m := &metrics{
		available: s.Gauge("available", "1 when the update repository publishes an appliance version newer than the running one."),
		staged:    s.Gauge("staged", "1 when a newer appliance version's files are verified and pinned in the cache."),
		requests:  s.CounterVec("requests_total", "Install and rollback requests handed to the installer, by action.", "action"),
		results:   s.CounterVec("results_total", "Installer results recorded, by action and result (ok, failed).", "action", "result"),
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

package supply

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	checks      *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	staged      *prometheus.CounterVec
	stagedBytes *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	s := metric.New(reg, "supply")
	m := &metrics{
		checks:      s.CounterVec("checks_total", "Source checks by result (ok, rejected).", "source", "result"),
		rejections:  s.CounterVec("rejections_total", "Source checks refused, by reason (see the package README).", "source", "reason"),
		staged:      s.CounterVec("candidates_staged_total", "Verified files staged as new candidates.", "source"),
		stagedBytes: s.CounterVec("staged_bytes_total", "Bytes of the candidates staged.", "source"),
		lastSuccess: s.GaugeVec("last_success_timestamp_seconds", "When each source's last check succeeded (Unix time).", "source"),
	}
	return m, s.Err()
}

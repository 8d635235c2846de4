package audit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

type metrics struct {
	records     prometheus.Counter
	failures    prometheus.Counter
	checkpoints prometheus.Counter
	latency     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, l *Log) (*metrics, error) {
	s := metric.New(reg, "audit")
	m := &metrics{
		records:     s.Counter("records_total", "Audit records written (file synced and database committed)."),
		failures:    s.Counter("write_failures_total", "Audit writes that failed; the actions they guarded did not take effect."),
		checkpoints: s.Counter("checkpoints_total", "Signed audit checkpoints made."),
		latency:     s.Histogram("write_duration_seconds", "Time to write one audit record, including fsync and commit.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
	}
	s.GaugeFunc("file_size_bytes", "Size of the append-only audit file.", func() float64 { return float64(l.Stats().FileBytes) })
	s.GaugeFunc("last_sequence", "Sequence number of the newest audit record.", func() float64 { return float64(l.Stats().Records) })
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

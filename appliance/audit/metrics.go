package audit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records     prometheus.Counter
	failures    prometheus.Counter
	checkpoints prometheus.Counter
	latency     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, l *Log) *metrics {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "patchgate_audit_records_total",
			Help: "Audit records written (file synced and database committed)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "patchgate_audit_write_failures_total",
			Help: "Audit writes that failed; the actions they guarded did not take effect."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "patchgate_audit_checkpoints_total",
			Help: "Signed audit checkpoints made."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "patchgate_audit_write_duration_seconds",
			Help: "Time to write one audit record, including fsync and commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.failures, m.checkpoints, m.latency,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_audit_file_size_bytes",
				Help: "Size of the append-only audit file."}, func() float64 { return float64(l.Stats().FileBytes) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "patchgate_audit_last_sequence",
				Help: "Sequence number of the newest audit record."}, func() float64 { return float64(l.Stats().Records) }))
	}
	return m
}

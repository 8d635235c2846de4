package active

import (
	"github.com/prometheus/client_golang/prometheus"
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
	m := &Metrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_probe_packets_total",
			Help: "Packets sent by active probes (as charged to the rate caps), by probe.",
		}, []string{"probe"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_scans_total",
			Help: "Active scans run, by result (ok, error, canceled).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "patchgate_netscan_scan_duration_seconds",
			Help:    "Wall time of active scans.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800},
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_netscan_live_hosts",
			Help: "Live hosts found by the last active scan.",
		}),
		excluded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "patchgate_netscan_excluded_hosts_total",
			Help: "Addresses skipped because an exclusion matched.",
		}),
	}
	for _, c := range []prometheus.Collector{m.packets, m.scans, m.duration, m.live, m.excluded} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

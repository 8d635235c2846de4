package passive

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what every Capture of one process saw, by interface.
// Create it once per registry; it is safe for concurrent use.
type Metrics struct {
	seen        *prometheus.CounterVec
	decoded     *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	kernelDrops *prometheus.CounterVec
	emitted     *prometheus.CounterVec
}

// NewMetrics registers the passive capture metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		seen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_frames_seen_total",
			Help: "Frames read from the capture socket (after the BPF filter).",
		}, []string{"iface"}),
		decoded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_frames_decoded_total",
			Help: "Frames that yielded at least one observation.",
		}, []string{"iface"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_frames_dropped_total",
			Help: "Malformed frames counted and dropped.",
		}, []string{"iface"}),
		kernelDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_kernel_drops_total",
			Help: "Frames the kernel dropped because the capture ring was full.",
		}, []string{"iface"}),
		emitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_netscan_observations_total",
			Help: "Observations passed on after repeats were suppressed, by source.",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{m.seen, m.decoded, m.dropped, m.kernelDrops, m.emitted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

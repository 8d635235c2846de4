package passive

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
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
	s := metric.New(reg, "netscan")
	m := &Metrics{
		seen:        s.CounterVec("frames_seen_total", "Frames read from the capture socket (after the BPF filter).", "iface"),
		decoded:     s.CounterVec("frames_decoded_total", "Frames that yielded at least one observation.", "iface"),
		dropped:     s.CounterVec("frames_dropped_total", "Malformed frames counted and dropped.", "iface"),
		kernelDrops: s.CounterVec("kernel_drops_total", "Frames the kernel dropped because the capture ring was full.", "iface"),
		emitted:     s.CounterVec("observations_total", "Observations passed on after repeats were suppressed, by source.", "source"),
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

package tuf

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// mirrorMetrics are one Mirror's metrics; every series carries repo=<name>.
type mirrorMetrics struct {
	refreshes       *prometheus.CounterVec
	refreshDuration prometheus.Histogram
	lastSuccess     prometheus.Gauge
	expiry          prometheus.Gauge
	versions        *prometheus.GaugeVec
	targets         prometheus.Gauge
	rolesMissing    prometheus.Gauge
}

func newMirrorMetrics(reg prometheus.Registerer, repo string, expired func() float64) (*mirrorMetrics, error) {
	s := metric.New(reg, "tuf")
	s.ConstLabels = prometheus.Labels{"repo": repo}
	m := &mirrorMetrics{
		refreshes:       s.CounterVec("refreshes_total", "Metadata refresh cycles by result (ok, error).", "result"),
		refreshDuration: s.Histogram("refresh_duration_seconds", "Time taken by a metadata refresh cycle.", prometheus.ExponentialBuckets(0.01, 4, 8)),
		lastSuccess:     s.Gauge("last_refresh_success_timestamp_seconds", "Unix time of the last successful refresh."),
		expiry:          s.Gauge("metadata_expiry_timestamp_seconds", "Unix time at which the verified top-level metadata expires."),
		versions:        s.GaugeVec("metadata_version", "Version of the verified top-level metadata by role.", "role"),
		targets:         s.Gauge("targets", "Targets listed by the verified metadata."),
		rolesMissing:    s.Gauge("delegated_roles_unavailable", "Delegated roles that failed verification."),
	}
	s.GaugeFunc("metadata_expired", "1 when the verified metadata has expired (or none was ever verified), else 0.", expired)
	if err := s.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

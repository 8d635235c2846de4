package tuf

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
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
	labels := prometheus.Labels{"repo": repo}
	m := &mirrorMetrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_tuf_refreshes_total", Help: "Metadata refresh cycles by result (ok, error).", ConstLabels: labels,
		}, []string{"result"}),
		refreshDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "patchgate_tuf_refresh_duration_seconds", Help: "Time taken by a metadata refresh cycle.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_tuf_last_refresh_success_timestamp_seconds", Help: "Unix time of the last successful refresh.", ConstLabels: labels,
		}),
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_tuf_metadata_expiry_timestamp_seconds", Help: "Unix time at which the verified top-level metadata expires.", ConstLabels: labels,
		}),
		versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_tuf_metadata_version", Help: "Version of the verified top-level metadata by role.", ConstLabels: labels,
		}, []string{"role"}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_tuf_targets", Help: "Targets listed by the verified metadata.", ConstLabels: labels,
		}),
		rolesMissing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "patchgate_tuf_delegated_roles_unavailable", Help: "Delegated roles that failed verification.", ConstLabels: labels,
		}),
	}
	expiredGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "patchgate_tuf_metadata_expired", Help: "1 when the verified metadata has expired (or none was ever verified), else 0.", ConstLabels: labels,
	}, expired)
	var errs []error
	for _, c := range []prometheus.Collector{m.refreshes, m.refreshDuration, m.lastSuccess, m.expiry, m.versions, m.targets, m.rolesMissing, expiredGauge} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

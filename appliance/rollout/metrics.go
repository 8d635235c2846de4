package rollout

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics. The gauges are refreshed on every tick.
type metrics struct {
	rollouts    *prometheus.GaugeVec
	deployments *prometheus.GaugeVec
	overdue     *prometheus.GaugeVec
	gate        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, _ *Engine) (*metrics, error) {
	m := &metrics{
		rollouts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_rollout_rollouts",
			Help: "Rollouts by state.",
		}, []string{"state"}),
		deployments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_rollout_deployments",
			Help: "Deployments (device x release) by state.",
		}, []string{"state"}),
		overdue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "patchgate_rollout_overdue_assets",
			Help: "Devices past the SLA deadline of a release they do not have yet, by the release's severity.",
		}, []string{"severity"}),
		gate: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "patchgate_rollout_gate_decisions_total",
			Help: "Serving gate decisions: serve, later (503), refused (403), unauthenticated (401), error.",
		}, []string{"decision"}),
	}
	for _, s := range States {
		m.rollouts.WithLabelValues(string(s))
	}
	for _, s := range DeploymentStates {
		m.deployments.WithLabelValues(string(s))
	}
	for _, s := range Severities {
		m.overdue.WithLabelValues(string(s))
	}
	for _, d := range []string{"serve", "later", "refused", "unauthenticated", "error"} {
		m.gate.WithLabelValues(d)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rollouts, m.deployments, m.overdue, m.gate} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

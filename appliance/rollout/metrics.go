package rollout

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// metrics are the engine's Prometheus metrics. The gauges are refreshed on every tick.
type metrics struct {
	rollouts    *prometheus.GaugeVec
	deployments *prometheus.GaugeVec
	overdue     *prometheus.GaugeVec
	gate        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, _ *Engine) (*metrics, error) {
	ms := metric.New(reg, "rollout")
	m := &metrics{
		rollouts:    ms.GaugeVec("rollouts", "Rollouts by state.", "state"),
		deployments: ms.GaugeVec("deployments", "Deployments (device x release) by state.", "state"),
		overdue:     ms.GaugeVec("overdue_assets", "Devices past the SLA deadline of a release they do not have yet, by the release's severity.", "severity"),
		gate:        ms.CounterVec("gate_decisions_total", "Serving gate decisions: serve, later (503), refused (403), unauthenticated (401), error.", "decision"),
	}
	if err := ms.Err(); err != nil {
		return nil, err
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
	return m, nil
}

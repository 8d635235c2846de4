package appliance

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/metric"
)

// MetricsGatherer is what /metrics serves: the System's registry with the site label
// (config key site) put on every metric, so that one Prometheus holds many sites
// apart; without a site it is the registry itself.
func (s *System) MetricsGatherer() prometheus.Gatherer {
	if s.cfg.Site == "" {
		return s.registry
	}
	return metric.WithLabels(s.registry, prometheus.Labels{"site": string(s.cfg.Site)})
}

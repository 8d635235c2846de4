package metric

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// WithLabels returns a Gatherer that puts labels, as constant labels, on every metric g
// gathers: the System's /metrics uses it for the site label (site=<config site>), so
// that one Prometheus (or Thanos/Mimir through federation or remote write) can hold
// many sites. Every subsystem keeps registering on its one registry and never sees
// the label. A metric that already carries one of these label names is an error naming
// the metric and the label; no labels return g itself.
func WithLabels(g prometheus.Gatherer, labels prometheus.Labels) prometheus.Gatherer {
	if len(labels) == 0 {
		return g
	}
	pairs := make([]*dto.LabelPair, 0, len(labels))
	for name, value := range labels {
		pairs = append(pairs, &dto.LabelPair{Name: &name, Value: &value})
	}
	slices.SortFunc(pairs, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return labelGatherer{g: g, pairs: pairs}
}

type labelGatherer struct {
	g     prometheus.Gatherer
	pairs []*dto.LabelPair
}

func (l labelGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, p := range l.pairs {
				if slices.ContainsFunc(m.GetLabel(), func(q *dto.LabelPair) bool { return q.GetName() == p.GetName() }) {
					return nil, fmt.Errorf("metric: gather: %s already has the label %q", mf.GetName(), p.GetName())
				}
			}
			lp := append(slices.Clone(m.GetLabel()), l.pairs...)
			slices.SortFunc(lp, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			m.Label = lp
		}
	}
	return mfs, err
}

// Package metrictest reads metrics back in tests: the value of a family on a registry,
// summed over its series.
package metrictest

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value returns the value of the first series of a counter or gauge family in reg that
// carries the label pairs (name, value, ...); ok is false when there is none.
func Value(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	ms := series(t, reg, name, labels)
	if len(ms) == 0 {
		return 0, false
	}
	return ms[0].GetGauge().GetValue() + ms[0].GetCounter().GetValue(), true
}

// Sum returns the sum of a counter or gauge family's values in reg; label pairs (name,
// value, ...) keep only the series that carry them. A family reg does not hold sums to 0.
func Sum(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for _, m := range series(t, reg, name, labels) {
		sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return sum
}

// series is the series of family name in reg that carry the label pairs.
func series(t testing.TB, reg prometheus.Gatherer, name string, labels []string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				out = append(out, m)
			}
		}
	}
	return out
}

// hasLabels reports whether got holds every (name, value) pair of want.
func hasLabels(got []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(got, func(lp *dto.LabelPair) bool { return lp.GetName() == want[i] && lp.GetValue() == want[i+1] }) {
			return false
		}
	}
	return true
}

// Package benchstat holds the small statistics the benchmarks report.
package benchstat

import (
	"slices"
	"time"
)

// Percentile is the p-quantile (0 to 1) of ds, nearest rank; 0 for no durations. ds is
// not changed.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

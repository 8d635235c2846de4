// Package defaults fills in what every service's Options may leave out: the clock, the
// logger and the metrics registry. It is a leaf: it uses nothing of the project's but
// clock, so every package may use it.
package defaults

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
)

// Fill sets each nil one of *clk, *log and *reg to its default: the wall clock, a logger
// that discards, a registry of the service's own (its metrics then reach no exporter).
// A nil pointer is skipped, for a service that has no such option.
func Fill(clk *clock.Clock, log **slog.Logger, reg *prometheus.Registerer) {
	if clk != nil && *clk == nil {
		*clk = clock.Real{}
	}
	if log != nil && *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
	if reg != nil && *reg == nil {
		*reg = prometheus.NewRegistry()
	}
}

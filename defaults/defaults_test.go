package defaults

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
)

func TestFill(t *testing.T) {
	t.Run("nil ones get defaults", func(t *testing.T) {
		var (
			clk clock.Clock
			log *slog.Logger
			reg prometheus.Registerer
		)
		Fill(&clk, &log, &reg)
		if _, ok := clk.(clock.Real); !ok {
			t.Errorf("clock = %T, want clock.Real", clk)
		}
		if log == nil || log.Enabled(t.Context(), slog.LevelError) {
			t.Errorf("logger = %v, want one that discards", log)
		}
		if reg == nil {
			t.Error("registerer is nil")
		}
	})
	t.Run("given ones are kept", func(t *testing.T) {
		fake := clock.NewFake(clock.Real{}.Now())
		var (
			clk clock.Clock           = fake
			log                       = slog.New(slog.DiscardHandler)
			reg prometheus.Registerer = prometheus.NewRegistry()
		)
		wantLog, wantReg := log, reg
		Fill(&clk, &log, &reg)
		if clk != clock.Clock(fake) || log != wantLog || reg != wantReg {
			t.Errorf("Fill replaced a given option")
		}
	})
	t.Run("nil pointers are skipped", func(t *testing.T) {
		Fill(nil, nil, nil)
	})
}

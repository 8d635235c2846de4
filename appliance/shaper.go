package appliance

import (
	"context"
	"fmt"

	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/cache"
)

// buildShaper makes the bandwidth shaper from the bandwidth section. The cache serves
// targets through it (cache.Handler.Shaper) and paces upstream fetches with it
// (cache.Options.Upstream); with no caps configured it only counts bytes per segment
// and responses keep the sendfile path.
func (s *System) buildShaper(context.Context) error {
	var names []string
	for _, seg := range s.segments.All() {
		names = append(names, seg.Name)
	}
	sh, err := cache.NewShaper(s.cfg.Bandwidth.ShaperConfig(names), cache.ShaperOptions{
		Logger:     s.log.With("svc", "shaper"),
		Registerer: s.registry,
		Now:        s.clock.Now,
		Segments:   s.segments,
		ClientKey:  shaperClientKey, // fleet.go: a downstream appliance by its credential
	})
	if err != nil {
		return fmt.Errorf("bandwidth: %w", err)
	}
	s.shaper = sh
	s.AddPanel(bandwidthPanel{sh})
	return nil
}

// bandwidthPanel shows the caps in force and the recent use against them.
type bandwidthPanel struct{ sh *cache.Shaper }

// BandwidthPanel is the panel's data.
type BandwidthPanel struct {
	Shaping   bool           `json:"shaping"` // false: nothing is capped; responses go straight from the file
	Percent   int            `json:"percent"` // of every configured rate, now
	NextTurn  string         `json:"next_turn"`
	Downloads int            `json:"downloads"`
	Clients   int            `json:"clients"`
	Budgets   []BandwidthRow `json:"budgets"`
}

// BandwidthRow is one budget: its cap now (0: none) and its use over the last seconds,
// in bytes per second.
type BandwidthRow struct {
	Name       string `json:"name"`
	Cap        int64  `json:"cap"`
	Use        int64  `json:"use"`
	UsePercent int    `json:"use_percent"` // of Cap, at most 100
}

func (p bandwidthPanel) Panel(context.Context) web.Panel {
	st := p.sh.Status()
	d := BandwidthPanel{
		Shaping: p.sh.Shaping(), Percent: st.Percent, Downloads: st.Downloads, Clients: st.Clients,
		NextTurn: st.NextTurn.Format("Mon 2006-01-02 15:04 MST"),
	}
	for _, b := range st.Budgets {
		name := b.Budget
		if b.Segment != "" {
			name = "segment " + b.Segment
		}
		row := BandwidthRow{Name: name, Cap: b.Cap, Use: b.Use}
		if b.Cap > 0 {
			row.UsePercent = int(min(100, 100*b.Use/b.Cap))
		}
		d.Budgets = append(d.Budgets, row)
	}
	return web.Panel{ID: "bandwidth", Title: "Bandwidth", Data: d}
}

package appliance

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/cache"
)

// buildShaper makes the bandwidth shaper from the bandwidth section. The cache serves
// targets through it (cache.Handler.Shaper) and paces upstream fetches with it
// (cache.Options.Upstream); with no caps configured it only counts bytes per segment
// and responses keep the sendfile path.
func (s *System) buildShaper(context.Context) error {
	bw := s.cfg.Bandwidth
	sc := cache.ShaperConfig{
		Site:           int64(bw.Site),
		Client:         int64(bw.Client),
		Upstream:       int64(bw.Upstream),
		DefaultPercent: bw.DefaultPercent,
		Location:       bw.Location(),
	}
	// Every segment is counted; those listed under bandwidth.segments are also capped.
	rates := map[string]int64{}
	for _, b := range bw.Segments {
		rates[b.Segment] = int64(b.Rate)
	}
	for _, seg := range s.cfg.Segments {
		var clients []netip.Prefix
		for _, p := range seg.Clients {
			clients = append(clients, p.Prefix)
		}
		sc.Segments = append(sc.Segments, cache.ShaperSegment{Name: seg.Name, Clients: clients, Rate: rates[seg.Name]})
	}
	for _, p := range bw.Schedule {
		sc.Schedule = append(sc.Schedule, cache.ShapePeriod{Days: p.Weekdays(), From: p.From.D(), To: p.To.D(), Percent: p.Percent})
	}
	sh, err := cache.NewShaper(sc, cache.ShaperOptions{
		Logger:     s.log.With("svc", "shaper"),
		Registerer: s.registry,
		Now:        s.clock.Now,
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

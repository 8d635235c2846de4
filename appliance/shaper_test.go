package appliance

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
)

func TestBandwidthWiring(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bandwidth = cache.Bandwidth{
		Zone: "America/New_York", Site: 10_000_000, Client: 2_000_000, Upstream: 5_000_000, DefaultPercent: 90,
		Segments: []cache.BandwidthSegment{{Segment: "loopback", Rate: 4_000_000}},
		Schedule: []cache.BandwidthPeriod{{Days: []string{"wed"}, From: cache.TimeOfDay(8 * time.Hour), To: cache.TimeOfDay(18 * time.Hour), Percent: 20}},
	}
	var ps conf.Problems
	if cfg.Bandwidth.Validate("bandwidth", []string{"loopback"}, &ps); len(ps) > 0 {
		t.Fatalf("config: %v", ps)
	}
	ny, _ := time.LoadLocation("America/New_York")
	clk := clock.NewFake(time.Date(2026, 3, 4, 12, 0, 0, 0, ny)) // a Wednesday, noon
	sys := newSystem(t, cfg, Options{Clock: clk})
	panel := func() BandwidthPanel {
		t.Helper()
		return panelData[BandwidthPanel](t, sys, "bandwidth")
	}
	caps := func(p BandwidthPanel) map[string]int64 {
		m := map[string]int64{}
		for _, b := range p.Budgets {
			m[b.Name] = b.Cap
		}
		return m
	}
	p := panel()
	if !p.Shaping || p.Percent != 20 {
		t.Errorf("at Wednesday noon: shaping %v at %d%%, want true at 20%%", p.Shaping, p.Percent)
	}
	want := map[string]int64{"site": 2_000_000, "segment loopback": 800_000, "segment other": 0, "client": 400_000, "upstream": 1_000_000}
	for name, v := range want {
		if got := caps(p)[name]; got != v {
			t.Errorf("at 20%%: cap of %s = %d, want %d", name, got, v)
		}
	}
	clk.Advance(7 * time.Hour) // 19:00: the default 90%
	if got := caps(panel())["site"]; got != 9_000_000 {
		t.Errorf("at 19:00: site cap = %d, want 9000000", got)
	}

	// The metrics are on the System's registry (and TestMetricNamesLint lints them).
	if !slices.Contains(lintMetrics(t, sys, "patchgate_shaper_"), "patchgate_shaper_cap_bytes_per_second") {
		t.Error("patchgate_shaper_cap_bytes_per_second not registered")
	}

	// The panel renders as HTML.
	runSystem(t, sys)
	waitReady(t, sys)
	code, body := fetch(t, "GET", "http://"+sys.AdminAddr()+"/", nil)
	if code != 200 || !strings.Contains(body, "segment loopback") || !strings.Contains(body, "Caps at <b>90%</b>") {
		t.Errorf("status page: %d, want 200 with the bandwidth panel; body:\n%s", code, body)
	}
	_, body = fetch(t, "GET", "http://"+sys.AdminAddr()+"/", nil, "Accept", "application/json")
	var st struct {
		Panels []struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	var got *BandwidthPanel
	for _, p := range st.Panels {
		if p.ID == "bandwidth" {
			got = new(BandwidthPanel)
			if err := json.Unmarshal(p.Data, got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got == nil || got.Percent != 90 || len(got.Budgets) != len(want) {
		t.Errorf("JSON status: bandwidth panel %+v, want one at 90%% with %d budgets", got, len(want))
	}
}

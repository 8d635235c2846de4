package curves

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/netscan"
)

// history is a compliance source with months of a site's obligations: every month
// each asset gets two releases (one critical, one medium), most patched within days,
// a few overdue, and ten approvals.
type history struct {
	items     []compliance.Item
	approvals []compliance.Approval
}

func newHistory(now time.Time, months, assets int) *history {
	h := &history{}
	for m := range months {
		since := now.AddDate(0, -months+m, 0)
		for a := range assets {
			for r, sev := range []string{"critical", "medium"} {
				it := compliance.Item{AssetID: fmt.Sprint(a), Asset: fmt.Sprintf("host-%d", a), AssetType: "workstation",
					Segment: "devices", Ring: []string{"pilot", "broad"}[a%2], Release: fmt.Sprintf("rel-%d-%d", m, r),
					CVEs: []string{fmt.Sprintf("CVE-2026-%05d", m*10+r)}, Severity: sev, KnownExploited: r == 0 && m%6 == 0,
					Since: since, Deadline: since.AddDate(0, 0, 15+15*r), Attempts: 1}
				if (a+m)%50 != 0 {
					it.PatchedAt = since.Add(time.Duration(1+(a+m)%10) * 24 * time.Hour)
				}
				h.items = append(h.items, it)
			}
		}
		for i := range 10 {
			h.approvals = append(h.approvals, compliance.Approval{Rollout: fmt.Sprintf("r-%d-%d", m, i), Submitted: since, Decided: since.Add(time.Duration(i+1) * time.Hour)})
		}
	}
	return h
}

func (h *history) Items(context.Context) ([]compliance.Item, error)         { return h.items, nil }
func (h *history) Approvals(context.Context) ([]compliance.Approval, error) { return h.approvals, nil }

// BenchmarkCurveCompliance: the compliance report's build time and peak heap against
// the months of data it covers (500 assets, two releases each a month: 60,000 items
// for five years), the report covering the whole period.
func BenchmarkCurveCompliance(b *testing.B) {
	once(b, "compliance", func(b *testing.B) []*Curve {
		now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
		var xs, secs, cpus, peak, la []float64
		for _, months := range sizes([]int{6, 12, 24, 36, 60}, []int{6, 12}) {
			h := newHistory(now, months, 500)
			bl := &compliance.Builder{Source: h}
			lv := loadAvg()
			stop := peakHeap()
			t0, c0 := time.Now(), cpuSecs()
			const runs = 3
			for range runs {
				if _, err := bl.Build(context.Background(), now, now.AddDate(0, -months, 0), now); err != nil {
					b.Fatal(err)
				}
			}
			d, cpu := time.Since(t0)/runs, (cpuSecs()-c0)/runs
			p := stop()
			xs, secs, cpus, peak, la = append(xs, float64(months)), append(secs, ms(d)), append(cpus, cpu*1000), append(peak, p), append(la, lv)
			b.Logf("months %d (%d items): report %v (CPU %.0f ms), peak heap %.1f MiB, load %.1f", months, len(h.items), d, cpu*1000, p, lv)
		}
		return []*Curve{{Name: "compliance-report", Title: "Compliance report: build time and peak heap vs months of data (500 assets)",
			XLabel: "months of data", YLabel: "ms, MiB", X: xs, Series: []Series{{"build ms (wall)", secs}, {"build CPU ms", cpus}, {"peak heap MiB", peak}}, Notes: []string{loadNote(la)}}}
	})
}

// BenchmarkCurveInventory: GET /api/v1/assets (JSON) and /api/v1/assets.csv against
// the number of assets in the inventory (each seen by ARP with a host name).
func BenchmarkCurveInventory(b *testing.B) {
	once(b, "inventory", func(b *testing.B) []*Curve {
		ctx := context.Background()
		db, err := store.Open(ctx, filepath.Join(tmpDir(b), "patchgate.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		inv, err := inventory.Open(ctx, db, inventory.Options{Logger: discard(), Registerer: prometheus.NewRegistry(),
			SegmentOf: func(netip.Addr) string { return "devices" }})
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		inventory.API{Inv: inv, Actor: func(*http.Request) string { return "bench" }}.Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		var xs, js, jsCPU, csv, csvCPU, la []float64
		have := 0
		for _, n := range sizes([]int{500, 1000, 2000, 5000}, []int{100, 500}) {
			var obs []netscan.Observation
			for ; have < n; have++ {
				o := netscan.Observation{Time: time.Now(), Source: netscan.SourceARP, Interface: "eth0",
					MAC:  netscan.MAC{0x02, 0, 0, byte(have >> 16), byte(have >> 8), byte(have)},
					Addr: netip.AddrFrom4([4]byte{10, byte(have >> 16), byte(have >> 8), byte(have)})}
				o.Add(netscan.KeyHostname, fmt.Sprintf("host-%d", have))
				obs = append(obs, o)
			}
			if err := inv.Observe(ctx, obs); err != nil {
				b.Fatal(err)
			}
			lv := loadAvg()
			// timeGet returns the wall and CPU time (server and client: one process) of a GET.
			timeGet := func(path string) (time.Duration, float64) {
				const runs = 5
				t0, c0 := time.Now(), cpuSecs()
				for range runs {
					if err := get(http.DefaultClient, srv.URL+path); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(t0) / runs, (cpuSecs() - c0) / runs * 1000
			}
			dj, cj := timeGet("/api/v1/assets")
			dc, cc := timeGet("/api/v1/assets.csv")
			xs, js, jsCPU, csv, csvCPU, la = append(xs, float64(n)), append(js, ms(dj)), append(jsCPU, cj), append(csv, ms(dc)), append(csvCPU, cc), append(la, lv)
			b.Logf("assets %d: list JSON %v (CPU %.0f ms), CSV %v (CPU %.0f ms), load %.1f", n, dj, cj, dc, cc, lv)
		}
		return []*Curve{{Name: "inventory-api", Title: "Inventory API: response time vs assets", XLabel: "assets",
			YLabel: "ms", X: xs, Series: []Series{{"JSON wall ms", js}, {"JSON CPU ms", jsCPU}, {"CSV wall ms", csv}, {"CSV CPU ms", csvCPU}}, Notes: []string{loadNote(la)}}}
	})
}

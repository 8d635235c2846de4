package curves

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/web"
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

// BenchmarkCurveInventory: the inventory's list, GET /api/v1/assets (JSON, the whole
// list: the API has no paging), /api/v1/assets.csv and the admin page GET /inventory as
// the UI asks for it (the first and the last page of 50, and a filtered first page)
// against the number of assets (each seen by ARP with a host name): wall and CPU time,
// and bytes allocated per request (server and client: one process).
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
		pages, err := web.NewPages(noStatus{}, discard())
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		inventory.API{Inv: inv, Actor: func(*http.Request) string { return "bench" }}.Register(mux)
		mux.Handle("GET /inventory", appliance.InventoryPage(inv, nil, pages, discard()))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		type series struct {
			name, path string
			wall, cpu  []float64
			mib        []float64
		}
		all := []*series{{name: "list"}, {name: "API JSON", path: "/api/v1/assets"}, {name: "CSV", path: "/api/v1/assets.csv"},
			{name: "page 1", path: "/inventory"}, {name: "last page", path: "/inventory?page=1000000"},
			{name: "filtered page", path: "/inventory?q=host-1"}}
		var xs, la []float64
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
			xs, la = append(xs, float64(n)), append(la, lv)
			for _, s := range all {
				const runs = 5
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				t0, c0 := time.Now(), cpuSecs()
				for range runs {
					if s.path == "" {
						_, err = inv.List(ctx, inventory.Filter{})
					} else {
						err = get(http.DefaultClient, srv.URL+s.path)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				wall, cpu := time.Since(t0)/runs, (cpuSecs()-c0)/runs*1000
				runtime.ReadMemStats(&m1)
				mib := float64(m1.TotalAlloc-m0.TotalAlloc) / runs / (1 << 20)
				s.wall, s.cpu, s.mib = append(s.wall, ms(wall)), append(s.cpu, cpu), append(s.mib, mib)
				b.Logf("assets %d: %s %v (CPU %.0f ms, %.1f MiB allocated), load %.1f", n, s.name, wall, cpu, mib, lv)
			}
		}
		var tm, mem []Series
		for _, s := range all {
			tm = append(tm, Series{s.name + " CPU ms", s.cpu})
			mem = append(mem, Series{s.name + " MiB", s.mib})
		}
		for _, s := range all[1:4] {
			tm = append(tm, Series{s.name + " wall ms", s.wall})
		}
		return []*Curve{
			{Name: "inventory-api", Title: "Inventory list, API and page: time vs assets", XLabel: "assets",
				YLabel: "ms", X: xs, Series: tm, Notes: []string{loadNote(la)}},
			{Name: "inventory-memory", Title: "Inventory list, API and page: bytes allocated per request vs assets", XLabel: "assets",
				YLabel: "MiB", X: xs, Series: mem, Notes: []string{loadNote(la)}}}
	})
}

// noStatus is the status source of the pages the curves render (their frame only).
type noStatus struct{}

func (noStatus) Status(context.Context) web.Status { return web.Status{} }

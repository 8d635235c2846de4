package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/web"
	"github.com/patchgate/patchgate/netscan/fingerprint"
)

// buildInventory opens the asset inventory and builds discovery (passive capture on
// the configured segments' interfaces, active scans on the schedule and on demand),
// mounts the inventory API and page, puts the inventory panel on the status page,
// sends new-device, firmware and admin-change events to the audit log, and names
// devices for the resolver's query log and the gateway's deny log.
func (s *System) buildInventory(ctx context.Context) error {
	ic := s.cfg.Inventory
	log := s.log.With("svc", "inventory")
	rules := fingerprint.DefaultRules()
	if ic.RulesFile != "" {
		path := ic.RulesFile
		if dir := s.opts.configDir(); !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("inventory.rules_file: %w", err)
		}
		site, err := fingerprint.ParseRules(path, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("inventory.rules_file: %w", err)
		}
		if rules, err = rules.With(site); err != nil {
			return fmt.Errorf("inventory.rules_file: %w", err)
		}
	}
	inv, err := inventory.Open(ctx, s.db, inventory.Options{
		Clock: s.clock, Logger: log, Registerer: s.registry, Classifier: fingerprint.New(rules),
		NewFor: ic.NewFor.D(), FragileTag: ic.FragileTag, SegmentOf: s.segments.NameOf,
	})
	if err != nil {
		return err
	}
	s.assets = inv
	if s.audit != nil {
		inv.SetEvents(s.notifyInventory(inventoryAudit{s.audit})) // audit.go, notifications.go
	}
	if s.resolver != nil {
		s.resolver.SetAssetNamer(inv)
	}
	if s.gateway != nil {
		s.gateway.SetNamer(inv)
	}
	if s.rollout != nil {
		// The engine maps requesters to assets and rings through the inventory, agents'
		// check-ins become observations, and firmware readings close deployments.
		s.rollout.SetAssets(inventoryAssets{inv})
		s.rollout.SetFacts(inventoryAssets{inv})
		inv.SetFirmwareObserver(s.rollout)
	}
	d, err := inventory.NewDiscovery(inv, ic.Discovery(s.segments), s.registry, s.log.With("svc", "discovery"), s.clock)
	if err != nil {
		return err
	}
	s.services = append(s.services, d)
	inventory.API{Inv: inv, Discovery: d, Actor: func(r *http.Request) string {
		if p := auth.FromContext(r.Context()); p != nil {
			return p.User
		}
		return "system"
	}, Error: auth.WriteError}.Register(s.admin.mux)
	pages, err := web.NewPages(s, s.log)
	if err != nil {
		return err
	}
	s.admin.mux.Handle("GET /inventory", InventoryPage(inv, d, pages, log))
	s.AddPanel(inventoryPanel{inv: inv, d: d})
	return nil
}

// InventoryPage is the admin page GET /inventory: one page (?page=, ?per_page=) of the
// assets the query's filter selects, with the filter's choices (d nil: no discovery
// status). It reads the inventory once per view: the page and the choices both come
// from one list of every asset (before, a filtered list and a second full one).
// Exported for the scale curve in test/bench/curves.
func InventoryPage(inv *inventory.Inventory, d *inventory.Discovery, pages *web.Pages, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := inventory.FilterFrom(r.URL.Query())
		all, err := inv.List(r.Context(), inventory.Filter{})
		if err != nil {
			log.Error("inventory page", "err", err)
			http.Error(w, "could not read the inventory; see the log", http.StatusInternalServerError)
			return
		}
		assets := all
		if f != (inventory.Filter{}) {
			assets = nil
			for _, a := range all { // List's order kept
				if f.Match(a) {
					assets = append(assets, a)
				}
			}
		}
		pg, err := pageOf(r.URL.Query(), len(assets)) // uipaging.go
		if err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintln(w, err)
			return
		}
		var ds inventory.DiscoveryStatus
		if d != nil {
			ds = d.Status()
		}
		pages.Render(w, "inventory.html", inventoryPage{Filter: f, Assets: assets[pg.From:pg.To], Choices: choicesOf(all),
			Query: r.URL.RawQuery, Discovery: ds, Paging: pg})
	})
}

// Inventory returns the asset inventory (nil before New built it), for end-to-end tests.
func (s *System) Inventory() *inventory.Inventory { return s.assets }

// Discovery returns the discovery service (nil before New built it), for end-to-end
// tests that start a scan without the admin API's login.
func (s *System) Discovery() *inventory.Discovery {
	for _, svc := range s.services {
		if d, ok := svc.(*inventory.Discovery); ok {
			return d
		}
	}
	return nil
}

// inventoryPanel is the status page's inventory box.
type inventoryPanel struct {
	inv *inventory.Inventory
	d   *inventory.Discovery
}

type typeCount struct {
	Type  string
	Count int
}

type inventoryPanelData struct {
	Total     int                       `json:"total"`
	NewCount  int                       `json:"new"`
	ByType    []typeCount               `json:"by_type"`
	Newest    []inventory.Asset         `json:"newest"`
	Sightings int                       `json:"sightings"`
	Discovery inventory.DiscoveryStatus `json:"discovery"`
	Choices   inventoryChoices          `json:"-"`
	Error     string                    `json:"error,omitempty"`
}

type inventoryChoices struct {
	Types, Segments, Rings []string
}

func choicesOf(as []inventory.Asset) inventoryChoices {
	var c inventoryChoices
	for _, a := range as {
		if !slices.Contains(c.Types, a.Type) {
			c.Types = append(c.Types, a.Type)
		}
		if a.Segment != "" && !slices.Contains(c.Segments, a.Segment) {
			c.Segments = append(c.Segments, a.Segment)
		}
		if a.Ring != "" && !slices.Contains(c.Rings, a.Ring) {
			c.Rings = append(c.Rings, a.Ring)
		}
	}
	slices.Sort(c.Types)
	slices.Sort(c.Segments)
	slices.Sort(c.Rings)
	return c
}

func (p inventoryPanel) Panel(ctx context.Context) web.Panel {
	data := inventoryPanelData{Discovery: p.d.Status()}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	all, err := p.inv.List(ctx, inventory.Filter{})
	if err != nil {
		data.Error = "could not read the inventory"
	}
	data.Total = len(all)
	counts := map[string]int{}
	for _, a := range all {
		counts[a.Type]++
		if a.New {
			data.NewCount++
			if len(data.Newest) < 10 {
				data.Newest = append(data.Newest, a)
			}
		}
	}
	for _, t := range fingerprint.Types {
		if n := counts[string(t)]; n > 0 {
			data.ByType = append(data.ByType, typeCount{string(t), n})
		}
	}
	data.Choices = choicesOf(all)
	if s, err := p.inv.Sightings(ctx, 1000); err == nil {
		data.Sightings = len(s)
	}
	return web.Panel{ID: "inventory", Title: "Devices", Data: data}
}

// inventoryPage is what /inventory renders.
type inventoryPage struct {
	Filter    inventory.Filter
	Assets    []inventory.Asset
	Choices   inventoryChoices
	Query     string
	Discovery inventory.DiscoveryStatus
	Paging    paging
}

package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/fingerprint"
)

// reindex rebuilds the in-memory indexes (address, MAC, name, fragile) from the store.
func (inv *Inventory) reindex(ctx context.Context) error {
	all, err := inv.rows(ctx)
	if err != nil {
		return fmt.Errorf("inventory: load: %w", err)
	}
	inv.mu.Lock()
	inv.byAddr, inv.byMAC = map[netip.Addr]string{}, map[netscan.MAC]string{}
	inv.names, inv.fragile = map[string]string{}, map[string]bool{}
	inv.mu.Unlock()
	// Older sightings first, so that an address's latest holder wins.
	slices.SortFunc(all, func(a, b *row) int { return a.last.Compare(b.last) })
	for _, r := range all {
		inv.index(r)
	}
	inv.refreshGauges(ctx)
	return nil
}

// index updates the in-memory indexes for r.
func (inv *Inventory) index(r *row) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for i := len(r.addrs) - 1; i >= 0; i-- {
		if a, err := netip.ParseAddr(r.addrs[i].Addr); err == nil {
			if i == 0 || inv.byAddr[a] == "" {
				inv.byAddr[a] = r.id
			}
		}
	}
	if m, err := netscan.ParseMAC(r.mac); err == nil {
		inv.byMAC[m] = r.id
	}
	inv.names[r.id] = r.displayName()
	inv.fragile[r.id] = slices.Contains(r.admin.Tags, inv.opts.FragileTag)
}

func (inv *Inventory) refreshGauges(ctx context.Context) {
	rows, err := inv.db.QueryContext(ctx, `SELECT a.obs_type, COALESCE(json_extract(d.attrs, '$.type'), '') FROM inventory_assets a
		LEFT JOIN inventory_admin d ON d.asset_id = a.id`)
	if err != nil {
		return
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var obs, admin string
		if rows.Scan(&obs, &admin) == nil {
			counts[pick(admin, obs)]++
		}
	}
	inv.met.assets.Reset()
	for _, t := range fingerprint.Types {
		inv.met.assets.WithLabelValues(string(t)).Set(float64(counts[string(t)]))
	}
	var n int
	if inv.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM inventory_sightings`).Scan(&n) == nil {
		inv.met.sightings.Set(float64(n))
	}
}

// asset turns a row into the Asset callers see.
func (inv *Inventory) asset(r *row, ids []string, withDetail bool) Asset {
	ad := r.admin
	a := Asset{
		ID: r.id, Name: r.displayName(), Key: r.keyKind, MAC: r.mac, RandomMAC: r.randomMAC,
		Hostname: pick(ad.Hostname, r.hostname), Serial: pick(ad.Serial, r.serial),
		Type: pick(ad.Type, string(r.class.Type)), TypeConfidence: r.class.Confidence,
		Vendor: pick(ad.Vendor, r.class.Vendor.Value), Model: pick(ad.Model, r.class.Model.Value),
		OS: pick(ad.OS, r.class.OS.Value), Firmware: pick(ad.Firmware, r.class.Firmware.Value),
		AdminOnly: ad.AdminOnly, Tags: ad.Tags, FirstSeen: r.first, LastSeen: r.last, Sources: r.sources, Identifiers: ids,
		AdminSet: ad.setNames(),
	}
	if a.Type == "" {
		a.Type = string(fingerprint.TypeUnknown)
	}
	if ad.Type != "" {
		a.TypeConfidence = 1
	}
	a.New = inv.opts.Clock.Now().Sub(r.first) < inv.opts.NewFor
	a.Addresses = []string{}
	for _, x := range r.addrs {
		a.Addresses = append(a.Addresses, x.Addr)
	}
	if len(r.addrs) > 0 {
		if ip, err := netip.ParseAddr(r.addrs[0].Addr); err == nil {
			a.Segment = inv.opts.SegmentOf(ip)
		}
	}
	if withDetail {
		c := r.class
		a.Evidence = &c
		a.Facts = r.facts
	}
	return a
}

// Filter selects assets. Empty fields match everything.
type Filter struct {
	Type    string
	Segment string
	Ring    string
	Tag     string
	NewOnly bool
	// Query matches a substring of name, hostname, address, MAC, vendor, model or serial.
	Query string
}

// Match reports whether a is one the filter selects (List's test).
func (f Filter) Match(a Asset) bool { return f.match(a) }

func (f Filter) match(a Asset) bool {
	if (f.Type != "" && a.Type != f.Type) || (f.Segment != "" && a.Segment != f.Segment) ||
		(f.Ring != "" && a.Ring != f.Ring) || (f.Tag != "" && !a.HasTag(f.Tag)) || (f.NewOnly && !a.New) {
		return false
	}
	if q := strings.ToLower(strings.TrimSpace(f.Query)); q != "" {
		hay := strings.ToLower(strings.Join(append([]string{a.Name, a.Hostname, a.MAC, a.Vendor, a.Model, a.Serial}, a.Addresses...), " "))
		return strings.Contains(hay, q)
	}
	return true
}

// List returns the assets f selects, new ones first, then by name.
func (inv *Inventory) List(ctx context.Context, f Filter) ([]Asset, error) {
	ids, err := inv.allIdentifiers(ctx, "")
	if err != nil {
		return nil, err
	}
	all, err := inv.rows(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: list: %w", err)
	}
	out := make([]Asset, 0, len(all)) // an Asset is large: no regrowth
	for _, r := range all {
		if a := inv.asset(r, ids[r.id], false); f.match(a) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b Asset) int {
		if a.New != b.New {
			if a.New {
				return -1
			}
			return 1
		}
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out, nil
}

func (inv *Inventory) allIdentifiers(ctx context.Context, id string) (map[string][]string, error) {
	q, args := `SELECT asset_id, kind, value FROM inventory_ids ORDER BY kind, value`, []any{}
	if id != "" {
		q, args = `SELECT asset_id, kind, value FROM inventory_ids WHERE asset_id = ? ORDER BY kind, value`, []any{id}
	}
	rows, err := inv.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: identifiers: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var a, k, v string
		if err := rows.Scan(&a, &k, &v); err != nil {
			return nil, err
		}
		out[a] = append(out[a], k+":"+v)
	}
	for a := range out {
		slices.SortStableFunc(out[a], func(x, y string) int {
			return slices.Index(idKinds, keyOf(x)) - slices.Index(idKinds, keyOf(y))
		})
	}
	return out, rows.Err()
}

// Get returns one asset with its evidence and facts.
func (inv *Inventory) Get(ctx context.Context, id string) (Asset, error) {
	r, err := loadRow(ctx, inv.db, id)
	if err != nil {
		return Asset{}, fmt.Errorf("inventory: get %s: %w", id, err)
	}
	if r == nil {
		return Asset{}, fmt.Errorf("inventory: get %s: %w", id, ErrNotFound)
	}
	ids, err := inv.allIdentifiers(ctx, id)
	if err != nil {
		return Asset{}, err
	}
	return inv.asset(r, ids[id], true), nil
}

// ByAddr returns the asset that last held addr.
func (inv *Inventory) ByAddr(ctx context.Context, addr netip.Addr) (Asset, bool, error) {
	inv.mu.RLock()
	id := inv.byAddr[addr.Unmap()]
	inv.mu.RUnlock()
	if id == "" {
		return Asset{}, false, nil
	}
	a, err := inv.Get(ctx, id)
	if err != nil {
		return Asset{}, false, err
	}
	return a, true, nil
}

// ByIdentifier returns the asset an identifier ("agent", id) belongs to.
func (inv *Inventory) ByIdentifier(ctx context.Context, kind, value string) (Asset, bool, error) {
	var id string
	err := inv.db.QueryRowContext(ctx, `SELECT asset_id FROM inventory_ids WHERE kind = ? AND value = ?`, kind, value).Scan(&id)
	if err == sql.ErrNoRows {
		return Asset{}, false, nil
	}
	if err != nil {
		return Asset{}, false, fmt.Errorf("inventory: by %s: %w", kind, err)
	}
	a, err := inv.Get(ctx, id)
	return a, err == nil, err
}

// NameOf names the asset that last held addr, "" if none. It reads memory only:
// quick enough for per-query logging.
func (inv *Inventory) NameOf(addr netip.Addr) string {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	return inv.names[inv.byAddr[addr.Unmap()]]
}

// Fragile reports whether the asset at addr (or with mac) is tagged fragile: scans
// skip it. It reads memory only.
func (inv *Inventory) Fragile(addr netip.Addr, mac netscan.MAC) bool {
	inv.mu.RLock()
	defer inv.mu.RUnlock()
	if id := inv.byAddr[addr.Unmap()]; id != "" && inv.fragile[id] {
		return true
	}
	if !mac.IsZero() {
		if id := inv.byMAC[mac]; id != "" && inv.fragile[id] {
			return true
		}
	}
	return false
}

// Update applies an administrator's attributes to an asset, by whom. It returns the
// asset after the change and the names of the attributes that changed.
func (inv *Inventory) Update(ctx context.Context, id string, attrs Attributes, by string) (Asset, []string, error) {
	inv.writeMu.Lock()
	defer inv.writeMu.Unlock()
	var changed []string
	var r *row
	err := inv.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = loadRow(ctx, tx, id); err != nil {
			return err
		}
		if r == nil {
			return ErrNotFound
		}
		if changed, err = r.admin.apply(attrs); err != nil || len(changed) == 0 {
			return err
		}
		b, _ := json.Marshal(r.admin)
		_, err = tx.ExecContext(ctx, `INSERT INTO inventory_admin(asset_id, attrs, updated_at, updated_by) VALUES(?,?,?,?)
			ON CONFLICT(asset_id) DO UPDATE SET attrs = excluded.attrs, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			id, string(b), ts(inv.opts.Clock.Now()), by)
		return err
	})
	if err != nil {
		return Asset{}, nil, fmt.Errorf("inventory: update %s: %w", id, err)
	}
	inv.index(r)
	inv.refreshGauges(ctx)
	a, err := inv.Get(ctx, id)
	return a, changed, err
}

// Sighting is a device seen only by a randomised MAC.
type Sighting struct {
	MAC       string         `json:"mac"`
	Addr      string         `json:"addr,omitempty"`
	Sources   []string       `json:"sources"`
	Facts     []netscan.Fact `json:"facts,omitempty"`
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
}

// Sightings lists the devices seen only by a randomised MAC, latest first.
func (inv *Inventory) Sightings(ctx context.Context, limit int) ([]Sighting, error) {
	out, err := store.Query(ctx, inv.db, func(row store.Row) (Sighting, error) {
		var s Sighting
		var facts, sources, first, last string
		if err := row.Scan(&s.MAC, &s.Addr, &facts, &sources, &first, &last); err != nil {
			return s, err
		}
		json.Unmarshal([]byte(facts), &s.Facts)
		json.Unmarshal([]byte(sources), &s.Sources)
		s.FirstSeen, s.LastSeen = parseTS(first), parseTS(last)
		return s, nil
	}, `SELECT mac, addr, facts, sources, first_seen, last_seen FROM inventory_sightings
		ORDER BY last_seen DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("inventory: sightings: %w", err)
	}
	return out, nil
}

// rows reads every asset with its admin values.
func (inv *Inventory) rows(ctx context.Context) ([]*row, error) {
	return store.Query(ctx, inv.db, scanRow,
		`SELECT `+rowColumns+` FROM inventory_assets a LEFT JOIN inventory_admin d ON d.asset_id = a.id`)
}

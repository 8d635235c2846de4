package inventory

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/fingerprint"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Errors callers branch on.
var (
	ErrNotFound = errors.New("no such asset")
	ErrInvalid  = errors.New("invalid attributes")
)

// Event kinds.
const (
	EventNewDevice       = "inventory.new_device"
	EventFirmwareChanged = "inventory.firmware_changed"
	EventAssetUpdated    = "inventory.asset_updated"
)

// Event is something the inventory tells the audit log.
type Event struct {
	Kind    string            `json:"kind"`
	AssetID string            `json:"asset_id"`
	Asset   string            `json:"asset"` // its name
	Before  string            `json:"before,omitempty"`
	After   string            `json:"after,omitempty"`
	Actor   string            `json:"actor"` // "discovery", or the admin who changed the asset
	Details map[string]string `json:"details,omitempty"`
	Time    time.Time         `json:"time"`
	// Request is the admin request behind an EventAssetUpdated (nil otherwise), so
	// that the sink can record who, how and from where.
	Request *http.Request `json:"-"`
}

// EventSink records inventory events; the audit log implements it (through the
// appliance). It must be safe for concurrent use.
type EventSink interface {
	InventoryEvent(ctx context.Context, e Event) error
}

// FirmwareObserver learns every firmware version discovery reads (the rollout engine
// counts a deployment done when the device reports the release's version).
type FirmwareObserver interface {
	ObserveFirmware(ctx context.Context, assetID, version string) (int, error)
}

// Options configure an Inventory.
type Options struct {
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Classifier classifies assets; nil means the built-in rules.
	Classifier *fingerprint.Classifier
	// NewFor is how long after its first sighting an asset counts as new (default 7 days).
	NewFor time.Duration
	// FragileTag marks assets that scans must not touch (default "fragile").
	FragileTag string
	// SegmentOf names the segment of an address ("" when none).
	SegmentOf func(netip.Addr) string
}

// Inventory is the asset store. It is safe for concurrent use; merges are serialised.
type Inventory struct {
	db   *store.DB
	opts Options
	log  *slog.Logger
	met  *metrics

	events   atomic.Pointer[EventSink]
	firmware atomic.Pointer[FirmwareObserver]

	writeMu sync.Mutex // one merge or update at a time

	mu      sync.RWMutex // guards the indexes below
	byAddr  map[netip.Addr]string
	byMAC   map[netscan.MAC]string
	names   map[string]string
	fragile map[string]bool
}

// Open applies the inventory's migrations to db and loads its indexes.
func Open(ctx context.Context, db *store.DB, opts Options) (*Inventory, error) {
	defaults.Fill(&opts.Clock, &opts.Logger, &opts.Registerer)
	if opts.Classifier == nil {
		opts.Classifier = fingerprint.New(nil)
	}
	if opts.NewFor == 0 {
		opts.NewFor = 7 * 24 * time.Hour
	}
	if opts.FragileTag == "" {
		opts.FragileTag = "fragile"
	}
	if opts.SegmentOf == nil {
		opts.SegmentOf = func(netip.Addr) string { return "" }
	}
	if err := db.MigrateFS(ctx, "inventory", migrationFS, "migrations"); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("inventory: metrics: %w", err)
	}
	inv := &Inventory{db: db, opts: opts, log: opts.Logger, met: m}
	if err := inv.reindex(ctx); err != nil {
		return nil, err
	}
	return inv, nil
}

// SetEvents connects the sink for events (nil disconnects).
func (inv *Inventory) SetEvents(s EventSink) {
	if s == nil {
		inv.events.Store(nil)
		return
	}
	inv.events.Store(&s)
}

// SetFirmwareObserver connects the observer of firmware readings (nil disconnects).
func (inv *Inventory) SetFirmwareObserver(f FirmwareObserver) {
	if f == nil {
		inv.firmware.Store(nil)
		return
	}
	inv.firmware.Store(&f)
}

// row is an asset's stored observed state.
type row struct {
	id        string
	keyKind   string
	mac       string
	randomMAC bool
	addrs     []addrSeen
	facts     []netscan.Fact
	sources   []string
	first     time.Time
	last      time.Time
	class     fingerprint.Result
	serial    string
	hostname  string
	created   bool
	prevFW    string
	admin     adminAttrs
}

type addrSeen struct {
	Addr string    `json:"addr"`
	Seen time.Time `json:"seen"`
}

const (
	maxAddrs       = 8
	maxFactsPerKey = 16
	maxFacts       = 256
)

// Observe merges observations into the inventory, in one transaction. Observations
// of devices without a stable identifier (only a random MAC) are kept as sightings.
func (inv *Inventory) Observe(ctx context.Context, obs []netscan.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	inv.writeMu.Lock()
	defer inv.writeMu.Unlock()
	now := inv.opts.Clock.Now().UTC()
	touched := map[string]*row{}
	var order []string
	err := inv.db.Tx(ctx, func(tx *sql.Tx) error {
		clear(touched)
		order = order[:0]
		for _, o := range obs {
			id, err := inv.resolve(ctx, tx, o, touched)
			if err != nil {
				return err
			}
			if id == "" {
				if err := upsertSighting(ctx, tx, o, now); err != nil {
					return err
				}
				continue
			}
			r, ok := touched[id]
			if !ok {
				if r, err = loadRow(ctx, tx, id); err != nil {
					return err
				}
				if r == nil {
					r = &row{id: id, keyKind: keyOf(id), first: now, created: true}
				}
				touched[id] = r
				order = append(order, id)
			}
			r.merge(o, now)
			if r.created {
				// Save now so that the identifiers' foreign key holds.
				if err := inv.save(ctx, tx, r); err != nil {
					return err
				}
			}
			for _, x := range identifiers(o) {
				if x.kind == idAddr && r.keyKind != idAddr {
					continue // an address identifies only an asset keyed on it
				}
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO inventory_ids(kind, value, asset_id) VALUES(?,?,?)`, x.kind, x.value, id); err != nil {
					return err
				}
			}
			if o.MAC.Unicast() {
				if err := absorbSighting(ctx, tx, r, o.MAC, now); err != nil {
					return err
				}
			}
		}
		for _, id := range order {
			r := touched[id]
			inv.classify(r)
			if err := inv.save(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("inventory: observe: %w", err)
	}
	inv.met.observations.Add(float64(len(obs)))
	for _, id := range order {
		r := touched[id]
		inv.index(r)
		name := r.displayName()
		if r.created {
			inv.met.newDevices.Inc()
			inv.emit(ctx, Event{Kind: EventNewDevice, AssetID: r.id, Asset: name, Actor: "discovery", Time: now,
				Details: map[string]string{"type": string(r.class.Type), "vendor": r.class.Vendor.Value, "model": r.class.Model.Value,
					"mac": r.mac, "address": r.firstAddr()}})
		}
		fw := r.class.Firmware.Value
		if fw != "" && r.prevFW != "" && fw != r.prevFW {
			inv.met.firmware.Inc()
			inv.emit(ctx, Event{Kind: EventFirmwareChanged, AssetID: r.id, Asset: name, Actor: "discovery", Time: now,
				Before: r.prevFW, After: fw})
		}
		if fw != "" && r.admin.Firmware == "" {
			if f := inv.firmware.Load(); f != nil {
				if _, err := (*f).ObserveFirmware(ctx, r.id, fw); err != nil {
					inv.log.Warn("firmware observer failed", "asset", r.id, "err", err)
				}
			}
		}
	}
	inv.refreshGauges(ctx)
	return nil
}

func (inv *Inventory) emit(ctx context.Context, e Event) {
	s := inv.events.Load()
	if s == nil {
		return
	}
	if err := (*s).InventoryEvent(ctx, e); err != nil {
		inv.met.eventErrors.Inc()
		inv.log.Error("inventory event not recorded", "kind", e.Kind, "asset", e.AssetID, "err", err)
	}
}

// resolve finds the asset an observation belongs to, or the ID a new asset takes;
// "" means it has no stable identifier (a sighting).
func (inv *Inventory) resolve(ctx context.Context, tx *sql.Tx, o netscan.Observation, touched map[string]*row) (string, error) {
	ids := identifiers(o)
	for _, x := range ids {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT asset_id FROM inventory_ids WHERE kind = ? AND value = ?`, x.kind, x.value).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	// An observation without its own identifier (an HTTP answer from a routed
	// address, say) belongs to whoever holds its address, if the MAC does not say
	// otherwise.
	if o.Addr.IsValid() {
		owner := ""
		for id, r := range touched {
			if slices.ContainsFunc(r.addrs, func(a addrSeen) bool { return a.Addr == o.Addr.String() }) {
				owner = id
			}
		}
		if owner == "" {
			inv.mu.RLock()
			owner = inv.byAddr[o.Addr]
			inv.mu.RUnlock()
		}
		switch {
		case owner == "":
		case o.MAC.IsZero():
			// Seen without a MAC (routed): the address's holder, unless it already has
			// another identifier of a kind this observation brings (another serial:
			// another device now has the address).
			conflict, err := identifierConflict(ctx, tx, owner, ids)
			if err != nil {
				return "", err
			}
			if !conflict {
				return owner, nil
			}
		case inv.macOf(ctx, tx, owner, touched) == o.MAC.String() && (len(ids) == 0 || ids[0].kind == idName):
			return owner, nil
		}
	}
	if len(ids) > 0 {
		return ids[0].String(), nil
	}
	return "", nil
}

// identifierConflict reports whether asset id has an identifier of one of the kinds
// of ids with another value.
func identifierConflict(ctx context.Context, tx *sql.Tx, id string, ids []identifier) (bool, error) {
	for _, x := range ids {
		if x.kind == idAddr {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM inventory_ids WHERE asset_id = ? AND kind = ? AND value != ?`,
			id, x.kind, x.value).Scan(&n); err != nil {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (inv *Inventory) macOf(ctx context.Context, tx *sql.Tx, id string, touched map[string]*row) string {
	if r, ok := touched[id]; ok {
		return r.mac
	}
	var mac string
	tx.QueryRowContext(ctx, `SELECT mac FROM inventory_assets WHERE id = ?`, id).Scan(&mac)
	return mac
}

// merge adds an observation to r.
func (r *row) merge(o netscan.Observation, now time.Time) {
	r.last = now
	if o.MAC.Unicast() && (r.mac == "" || !o.MAC.LocallyAdministered() || r.randomMAC) {
		r.mac, r.randomMAC = o.MAC.String(), o.MAC.LocallyAdministered()
	}
	if o.Addr.IsValid() {
		a := o.Addr.String()
		r.addrs = slices.DeleteFunc(r.addrs, func(x addrSeen) bool { return x.Addr == a })
		r.addrs = append([]addrSeen{{Addr: a, Seen: now}}, r.addrs...)
		if len(r.addrs) > maxAddrs {
			r.addrs = r.addrs[:maxAddrs]
		}
	}
	if !slices.Contains(r.sources, string(o.Source)) {
		r.sources = append(r.sources, string(o.Source))
		slices.Sort(r.sources)
	}
	r.facts = mergeFacts(r.facts, o.Facts)
}

// unionKeys keep every value seen; other keys keep the latest observation's values.
var unionKeys = map[netscan.Key]bool{
	netscan.KeyHostname: true, netscan.KeyMDNSService: true, netscan.KeyMDNSHost: true,
	netscan.KeySSDPType: true, netscan.KeyNetBIOSName: true, netscan.KeyNetBIOSGroup: true,
}

// mergeFacts puts the new facts first (newest first everywhere), replaces the old
// values of keys that hold one current value (firmware, sysDescr, open ports...), and
// bounds the list.
func mergeFacts(old, add []netscan.Fact) []netscan.Fact {
	replace := map[netscan.Key]bool{}
	for _, f := range add {
		if !unionKeys[f.Key] {
			replace[f.Key] = true
		}
	}
	out := make([]netscan.Fact, 0, len(old)+len(add))
	perKey := map[netscan.Key]int{}
	push := func(f netscan.Fact) {
		if len(out) >= maxFacts || perKey[f.Key] >= maxFactsPerKey || slices.Contains(out, f) {
			return
		}
		perKey[f.Key]++
		out = append(out, f)
	}
	for _, f := range add {
		push(f)
	}
	for _, f := range old {
		if !replace[f.Key] {
			push(f)
		}
	}
	return out
}

// classify derives the observed attributes from the facts.
func (inv *Inventory) classify(r *row) {
	mac, _ := netscan.ParseMAC(r.mac)
	r.class = inv.opts.Classifier.Classify(mac, r.facts)
	r.class.Facts = nil
	r.serial, r.hostname = "", ""
	for _, k := range []netscan.Key{KeyAgentSerial, netscan.KeySNMPSerial, netscan.KeyIPPSerial, netscan.KeyUPnPSerial} {
		for _, f := range r.facts {
			if f.Key == k && r.serial == "" && usefulSerial(f.Value) {
				r.serial = f.Value
			}
		}
	}
	for _, f := range r.facts {
		switch {
		case f.Key == netscan.KeyHostname && r.hostname == "":
			r.hostname = f.Value
		case f.Key == KeyAgentOS && r.class.OS.Confidence < 1:
			// What the agent on the device says beats any inference.
			r.class.OS = fingerprint.Attribute{Value: f.Value, Confidence: 1,
				Evidence: fingerprint.Evidence{Rule: "agent-report", Confidence: 1, Facts: []netscan.Fact{f}}}
		}
	}
}

func (r *row) displayName() string {
	switch {
	case r.admin.Name != "":
		return r.admin.Name
	case r.admin.Hostname != "":
		return r.admin.Hostname
	case r.hostname != "":
		return r.hostname
	case r.class.Vendor.Value != "" || r.class.Model.Value != "":
		return strings.TrimSpace(r.class.Vendor.Value + " " + r.class.Model.Value)
	}
	// What the device calls itself on its web page or in its UPnP description.
	for _, k := range []netscan.Key{netscan.KeyUPnPFriendlyName, netscan.KeyHTTPTitle} {
		for _, f := range r.facts {
			if f.Key == k {
				return f.Value
			}
		}
	}
	return r.id
}

func (r *row) firstAddr() string {
	if len(r.addrs) == 0 {
		return ""
	}
	return r.addrs[0].Addr
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const rowColumns = `a.id, a.key_kind, a.mac, a.random_mac, a.addresses, a.obs_hostname, a.obs_serial, a.obs_firmware,
	a.facts, a.evidence, a.sources, a.first_seen, a.last_seen, COALESCE(d.attrs, '{}')`

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	var r row
	var addrs, facts, evidence, sources, first, last, attrs string
	var random int
	if err := sc.Scan(&r.id, &r.keyKind, &r.mac, &random, &addrs, &r.hostname, &r.serial, &r.prevFW,
		&facts, &evidence, &sources, &first, &last, &attrs); err != nil {
		return nil, err
	}
	r.randomMAC = random != 0
	r.first, r.last = parseTS(first), parseTS(last)
	// Stored by this package; a decoding error leaves the field empty rather than
	// failing the whole inventory.
	json.Unmarshal([]byte(addrs), &r.addrs)
	json.Unmarshal([]byte(facts), &r.facts)
	json.Unmarshal([]byte(evidence), &r.class)
	json.Unmarshal([]byte(sources), &r.sources)
	json.Unmarshal([]byte(attrs), &r.admin)
	return &r, nil
}

func loadRow(ctx context.Context, q querier, id string) (*row, error) {
	r, err := scanRow(q.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM inventory_assets a
		LEFT JOIN inventory_admin d ON d.asset_id = a.id WHERE a.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

func (inv *Inventory) save(ctx context.Context, tx *sql.Tx, r *row) error {
	addrs, _ := json.Marshal(r.addrs)
	facts, _ := json.Marshal(r.facts)
	evidence, _ := json.Marshal(r.class)
	sources, _ := json.Marshal(r.sources)
	random := 0
	if r.randomMAC {
		random = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO inventory_assets(id, key_kind, mac, random_mac, addresses, obs_hostname, obs_serial,
		obs_type, obs_type_confidence, obs_vendor, obs_model, obs_os, obs_firmware, facts, evidence, sources, first_seen, last_seen)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET mac=excluded.mac, random_mac=excluded.random_mac, addresses=excluded.addresses,
		obs_hostname=excluded.obs_hostname, obs_serial=excluded.obs_serial, obs_type=excluded.obs_type,
		obs_type_confidence=excluded.obs_type_confidence, obs_vendor=excluded.obs_vendor, obs_model=excluded.obs_model,
		obs_os=excluded.obs_os, obs_firmware=excluded.obs_firmware, facts=excluded.facts, evidence=excluded.evidence,
		sources=excluded.sources, first_seen=excluded.first_seen, last_seen=excluded.last_seen`,
		r.id, r.keyKind, r.mac, random, string(addrs), r.hostname, r.serial, string(r.class.Type), r.class.Confidence,
		r.class.Vendor.Value, r.class.Model.Value, r.class.OS.Value, r.class.Firmware.Value, string(facts), string(evidence),
		string(sources), ts(r.first), ts(r.last))
	return err
}

// upsertSighting records a device seen only by a random MAC.
func upsertSighting(ctx context.Context, tx *sql.Tx, o netscan.Observation, now time.Time) error {
	if !o.MAC.Unicast() {
		return nil // an address-less, MAC-less observation says nothing lasting
	}
	var factsJSON, sourcesJSON string
	err := tx.QueryRowContext(ctx, `SELECT facts, sources FROM inventory_sightings WHERE mac = ?`, o.MAC.String()).Scan(&factsJSON, &sourcesJSON)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var facts []netscan.Fact
	var sources []string
	json.Unmarshal([]byte(factsJSON), &facts)
	json.Unmarshal([]byte(sourcesJSON), &sources)
	facts = mergeFacts(facts, o.Facts)
	if !slices.Contains(sources, string(o.Source)) {
		sources = append(sources, string(o.Source))
	}
	fb, _ := json.Marshal(facts)
	sb, _ := json.Marshal(sources)
	addr := ""
	if o.Addr.IsValid() {
		addr = o.Addr.String()
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO inventory_sightings(mac, addr, facts, sources, first_seen, last_seen) VALUES(?,?,?,?,?,?)
		ON CONFLICT(mac) DO UPDATE SET addr = CASE WHEN excluded.addr != '' THEN excluded.addr ELSE addr END,
		facts = excluded.facts, sources = excluded.sources, last_seen = excluded.last_seen`,
		o.MAC.String(), addr, string(fb), string(sb), ts(now), ts(now))
	return err
}

// absorbSighting moves what a sighting of mac gathered into r.
func absorbSighting(ctx context.Context, tx *sql.Tx, r *row, mac netscan.MAC, now time.Time) error {
	var factsJSON, sourcesJSON, addr, first string
	err := tx.QueryRowContext(ctx, `SELECT facts, sources, addr, first_seen FROM inventory_sightings WHERE mac = ?`, mac.String()).
		Scan(&factsJSON, &sourcesJSON, &addr, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var facts []netscan.Fact
	var sources []string
	json.Unmarshal([]byte(factsJSON), &facts)
	json.Unmarshal([]byte(sourcesJSON), &sources)
	r.facts = mergeFacts(facts, r.facts) // the asset's own facts stay newest
	for _, s := range sources {
		if !slices.Contains(r.sources, s) {
			r.sources = append(r.sources, s)
		}
	}
	slices.Sort(r.sources)
	if t := parseTS(first); !t.IsZero() && t.Before(r.first) {
		r.first = t
	}
	if addr != "" && !slices.ContainsFunc(r.addrs, func(a addrSeen) bool { return a.Addr == addr }) && len(r.addrs) < maxAddrs {
		r.addrs = append(r.addrs, addrSeen{Addr: addr, Seen: now})
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM inventory_sightings WHERE mac = ?`, mac.String())
	return err
}

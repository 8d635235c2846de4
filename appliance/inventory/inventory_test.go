package inventory

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/netscan"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type sink struct {
	mu     sync.Mutex
	events []Event
}

func (s *sink) InventoryEvent(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Request = nil
	s.events = append(s.events, e)
	return nil
}

func (s *sink) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Kind+" "+e.AssetID)
	}
	return out
}

type fixture struct {
	inv   *Inventory
	clock *clock.Fake
	sink  *sink
	db    *store.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	clk := clock.NewFake(t0)
	inv, err := Open(ctx, db, Options{Clock: clk, NewFor: 24 * time.Hour,
		SegmentOf: func(a netip.Addr) string {
			if netip.MustParsePrefix("192.0.2.0/24").Contains(a) {
				return "devices"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	inv.SetEvents(s)
	return &fixture{inv: inv, clock: clk, sink: s, db: db}
}

func mac(s string) netscan.MAC {
	m, err := netscan.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func obs(src netscan.Source, m string, addr string, kv ...string) netscan.Observation {
	o := netscan.Observation{Source: src}
	if m != "" {
		o.MAC = mac(m)
	}
	if addr != "" {
		o.Addr = netip.MustParseAddr(addr)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		o.Add(netscan.Key(kv[i]), kv[i+1])
	}
	return o
}

func (f *fixture) observe(t *testing.T, os ...netscan.Observation) {
	t.Helper()
	if err := f.inv.Observe(context.Background(), os); err != nil {
		t.Fatalf("Observe: %v", err)
	}
}

func (f *fixture) list(t *testing.T) []Asset {
	t.Helper()
	as, err := f.inv.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestMergeByMAC(t *testing.T) {
	f := newFixture(t)
	f.observe(t,
		obs(netscan.SourceARPSweep, "00:07:4d:10:20:30", "192.0.2.10"),
		obs(netscan.SourceSNMP, "00:07:4d:10:20:30", "192.0.2.10", "snmp.sys_object_id", "1.3.6.1.4.1.10642.1.1",
			"snmp.sys_descr", "ZTC ZT410-300dpi ZPL V75.20.01Z", "snmp.serial", "18J123456789", "snmp.sys_name", "zt410-lab", "hostname", "zt410-lab"),
		obs(netscan.SourceTCP, "", "192.0.2.10", "tcp.open", "9100"), // routed-style: no MAC, joins by address
	)
	as := f.list(t)
	if len(as) != 1 {
		t.Fatalf("assets = %d, want 1: %+v", len(as), as)
	}
	a := as[0]
	want := Asset{ID: "mac:00:07:4d:10:20:30", Name: "zt410-lab", Key: "mac", MAC: "00:07:4d:10:20:30", Addresses: []string{"192.0.2.10"},
		Segment: "devices", Hostname: "zt410-lab", Serial: "18J123456789", Type: "label_printer", Vendor: "Zebra Technologies",
		Model: "ZT410", Firmware: "V75.20.01Z", FirstSeen: t0, LastSeen: t0, New: true, Sources: []string{"arp-sweep", "snmp", "tcp"},
		Identifiers: []string{"mac:00:07:4d:10:20:30", "serial:18J123456789"}}
	if diff := cmp.Diff(want, a, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".TypeConfidence" }, cmp.Ignore())); diff != "" {
		t.Errorf("asset (-want +got):\n%s", diff)
	}
	if got := f.sink.kinds(); !slices.Equal(got, []string{EventNewDevice + " mac:00:07:4d:10:20:30"}) {
		t.Errorf("events = %v, want one new device", got)
	}
	if got := f.inv.NameOf(netip.MustParseAddr("192.0.2.10")); got != "zt410-lab" {
		t.Errorf("NameOf = %q", got)
	}
}

func TestRandomMACIsNeverAKeyAlone(t *testing.T) {
	f := newFixture(t)
	phone := "7a:11:22:33:44:55"
	f.observe(t, obs(netscan.SourceARPSweep, phone, "192.0.2.40"))
	if as := f.list(t); len(as) != 0 {
		t.Fatalf("a random MAC alone made an asset: %+v", as)
	}
	s, err := f.inv.Sightings(context.Background(), 10)
	if err != nil || len(s) != 1 || s[0].MAC != phone {
		t.Fatalf("sightings = %+v, %v; want the phone", s, err)
	}
	// A DHCP client ID that only repeats the random MAC identifies nothing either.
	f.observe(t, obs(netscan.SourceDHCP, phone, "", "dhcp.client_id", "017a1122334455", "dhcp.vendor_class", "android-dhcp-14"))
	if as := f.list(t); len(as) != 0 {
		t.Fatalf("client ID of the random MAC made an asset: %+v", as)
	}
	// A host name does: the sighting becomes an asset keyed on it, with what was seen.
	f.clock.Advance(time.Minute)
	f.observe(t, obs(netscan.SourceDHCP, phone, "", "hostname", "Pixel-7"))
	as := f.list(t)
	if len(as) != 1 || as[0].ID != "name:pixel-7" || !as[0].RandomMAC || as[0].OS != "Android 14" || !slices.Contains(as[0].Addresses, "192.0.2.40") {
		t.Fatalf("assets = %+v, want name:pixel-7 with the sighting's facts", as)
	}
	if !as[0].FirstSeen.Equal(t0) {
		t.Errorf("FirstSeen = %v, want the sighting's %v", as[0].FirstSeen, t0)
	}
	if s, _ := f.inv.Sightings(context.Background(), 10); len(s) != 0 {
		t.Errorf("sighting not absorbed: %+v", s)
	}
}

func TestAdminAttributesSurviveObservations(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m := "00:07:4d:10:20:30"
	f.observe(t, obs(netscan.SourceIPP, m, "192.0.2.10", "ipp.make_and_model", "Zebra ZT410", "ipp.firmware", "V75.20.01Z"))
	id := "mac:" + m
	str := func(s string) *string { return &s }
	tags := []string{"fragile", "Pharmacy"}
	_, changed, err := f.inv.Update(ctx, id, Attributes{Name: str("Label printer 1"), Owner: str("Pharmacy lead"),
		Criticality: str("critical"), EPHI: str("yes"), Ring: str("critical"), Model: str("ZT410-300"), Tags: &tags}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 7 {
		t.Errorf("changed = %v", changed)
	}
	f.clock.Advance(time.Hour)
	f.observe(t, obs(netscan.SourceIPP, m, "192.0.2.11", "ipp.make_and_model", "Zebra ZT411", "ipp.firmware", "V80.1.1Z", "hostname", "renamed"))
	a, err := f.inv.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "Label printer 1" || a.Model != "ZT410-300" || a.Owner != "Pharmacy lead" || a.Ring != "critical" {
		t.Errorf("admin attributes changed by an observation: %+v", a)
	}
	if a.Firmware != "V80.1.1Z" || a.Addresses[0] != "192.0.2.11" {
		t.Errorf("observed attributes not updated: firmware %q addresses %v", a.Firmware, a.Addresses)
	}
	wantEvents := []string{EventNewDevice + " " + id, EventFirmwareChanged + " " + id}
	if got := f.sink.kinds(); !slices.Equal(got, wantEvents) {
		t.Errorf("events = %v, want %v", got, wantEvents)
	}
	if e := f.sink.events[1]; e.Before != "V75.20.01Z" || e.After != "V80.1.1Z" {
		t.Errorf("firmware event %+v", e)
	}
	if !f.inv.Fragile(netip.MustParseAddr("192.0.2.11"), netscan.MAC{}) || !f.inv.Fragile(netip.Addr{}, mac(m)) {
		t.Errorf("asset tagged fragile not reported fragile")
	}
	// Clearing an override shows the observed value again.
	if a, _, err = f.inv.Update(ctx, id, Attributes{Model: str("")}, "alice"); err != nil || a.Model != "Zebra ZT411" {
		t.Errorf("after clearing the model override: %q, %v", a.Model, err)
	}
}

func TestUpdateValidation(t *testing.T) {
	f := newFixture(t)
	f.observe(t, obs(netscan.SourceARP, "00:07:4d:10:20:30", "192.0.2.10"))
	str := func(s string) *string { return &s }
	bad := []string{"x!"}
	_, _, err := f.inv.Update(context.Background(), "mac:00:07:4d:10:20:30", Attributes{Criticality: str("extreme"),
		EOLDate: str("2026-13-01"), Type: str("toaster"), Ring: str("Pilot Group"), Tags: &bad, Owner: str("a\x00b")}, "bob")
	if err == nil {
		t.Fatal("Update with bad attributes succeeded")
	}
	for _, w := range []string{"criticality", "eol_date", "type", "ring", "tags", "owner"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if _, _, err := f.inv.Update(context.Background(), "mac:nope", Attributes{}, "bob"); err == nil {
		t.Error("Update of an unknown asset succeeded")
	}
}

func TestRoutedDevices(t *testing.T) {
	f := newFixture(t)
	// Seen only by address: keyed on it.
	f.observe(t, obs(netscan.SourceTCP, "", "198.51.100.7", "tcp.open", "443"))
	// A serial from the same address joins it.
	f.observe(t, obs(netscan.SourceSNMP, "", "198.51.100.7", "snmp.serial", "CN12345678", "snmp.sys_descr", "HP ETHERNET MULTI-ENVIRONMENT"))
	// Another routed device with its own serial.
	f.observe(t, obs(netscan.SourceSNMP, "", "198.51.100.8", "snmp.serial", "CN99999999"))
	as := f.list(t)
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	if want := []string{"addr:198.51.100.7", "serial:CN99999999"}; !slices.Equal(ids, want) {
		t.Errorf("assets = %v, want %v", ids, want)
	}
}

func TestFactsReplaceAndUnion(t *testing.T) {
	got := mergeFacts(
		[]netscan.Fact{{Key: "tcp.open", Value: "22"}, {Key: "tcp.open", Value: "80"}, {Key: "hostname", Value: "a"}, {Key: "ipp.firmware", Value: "1"}},
		[]netscan.Fact{{Key: "tcp.open", Value: "443"}, {Key: "hostname", Value: "b"}, {Key: "ipp.firmware", Value: "2"}})
	want := []netscan.Fact{{Key: "tcp.open", Value: "443"}, {Key: "hostname", Value: "b"}, {Key: "ipp.firmware", Value: "2"}, {Key: "hostname", Value: "a"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mergeFacts (-want +got):\n%s", diff)
	}
}

func TestReopenKeepsIndexes(t *testing.T) {
	f := newFixture(t)
	f.observe(t, obs(netscan.SourceARP, "00:07:4d:10:20:30", "192.0.2.10", "hostname", "zt410"))
	inv2, err := Open(context.Background(), f.db, Options{Clock: f.clock, Registerer: nil})
	if err != nil {
		t.Fatal(err)
	}
	if got := inv2.NameOf(netip.MustParseAddr("192.0.2.10")); got != "zt410" {
		t.Errorf("NameOf after reopen = %q", got)
	}
}

package appliance

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/netscan/scantest"
)

// TestInventoryWiring runs the System with an on-demand scan of one loopback address
// where a TCP listener stands, starts a scan, and finds the device through the API,
// the inventory page, the status panel and the metrics. Nothing leaves loopback.
func TestInventoryWiring(t *testing.T) {
	port := scantest.OpenPort(t, "127.0.5.1:0")

	cfg := testConfig(t)
	cfg.Inventory.Scan = inventory.ScanSection{Enabled: true, Subnets: []conf.Prefix{conf.MustPrefix("127.0.5.1/32")},
		Probes: []string{"tcp"}, Ports: []int{port}, HostRate: 40, GlobalRate: 1000, Timeout: conf.Duration(time.Second),
		MaxAddresses: 16}
	sys := newSystem(t, cfg, Options{})
	d, ok := serviceOf[*inventory.Discovery](sys)
	if !ok || sys.assets == nil {
		t.Fatal("inventory or discovery not built")
	}
	runSystem(t, sys)
	waitUntil(t, "discovery ready", 15*time.Second, d.Ready)
	if err := d.ScanNow(); err != nil {
		t.Fatalf("ScanNow: %v", err)
	}
	base := "http://" + sys.AdminAddr()
	viewer := apiToken(t, sys, auth.Viewer) // the loopback viewer reads the status page only
	get := func(path string) (int, string) {
		t.Helper()
		return getWith(t, base+path, viewer)
	}
	var exp inventory.Export
	waitUntil(t, "the scanned device in /api/v1/assets", 15*time.Second, func() bool {
		code, body := get("/api/v1/assets")
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/assets = %d %s", code, body)
		}
		json.Unmarshal([]byte(body), &exp)
		return exp.Count == 1
	})
	a := exp.Assets[0]
	if a.ID != "addr:127.0.5.1" || a.Addresses[0] != "127.0.5.1" || a.Segment != "loopback" {
		t.Errorf("asset = %+v", a)
	}
	if sys.assets.NameOf(netip.MustParseAddr("127.0.5.1")) == "" {
		t.Errorf("NameOf of the scanned address is empty")
	}
	for _, tc := range []struct{ path, want string }{
		{"/inventory", "addr:127.0.5.1"},
		{"/api/v1/assets.csv", "addr:127.0.5.1"},
		{"/api/v1/assets/addr:127.0.5.1", `"tcp.open"`},
		{"/", "Devices"},
		{"/metrics", "patchgate_inventory_new_devices_total 1"},
		{"/api/v1/scans", `"scan_enabled": true`},
	} {
		code, body := get(tc.path)
		if code != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d, body lacks %q:\n%.600s", tc.path, code, tc.want, body)
		}
	}
	// Changing an asset needs inventory.write: the loopback viewer may not.
	resp, err := http.Post(base+"/api/v1/assets/addr:127.0.5.1", "application/json", strings.NewReader(`{"owner":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("POST /api/v1/assets/{id} as the loopback viewer = %d, want refused", resp.StatusCode)
	}
}

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/test/netlab"
)

// applianceReport is what the appliance role prints.
type applianceReport struct {
	Assets    inventory.Export     `json:"assets"`
	Sightings []inventory.Sighting `json:"sightings"`
	Discovery inventory.DiscoveryStatus
}

// roleAppliance runs the whole appliance in the scanner's namespace with passive
// discovery on eth0 and one scan of the lab (the excluded host excluded), then prints
// what its inventory API says. Args: state-dir excluded-address.
func roleAppliance(args []string) int {
	sections := fmt.Sprintf(`
resolver: {enabled: false}
inventory:
  passive: {enabled: true, segments: [devices]}
  scan: {enabled: true, schedule: "", segments: [devices], exclude_hosts: [%s], timeout: 1s}
`, args[1])
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sys, stop, err := runLabAppliance(ctx, args[0], "127.0.0.1:18080", sections)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	d := sys.Discovery()
	for !d.Ready() {
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.ScanNow(); err != nil {
		fmt.Fprintln(os.Stderr, "scan:", err)
		return 1
	}
	// Wait for the scan to finish and for what the devices announce (DHCP each second,
	// mDNS and SSDP twice a second) to be merged: until the inventory holds the three
	// identifiable devices and the phone's sighting, or 40s.
	inv := sys.Inventory()
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		st := d.Status()
		as, _ := inv.List(ctx, inventory.Filter{})
		ss, _ := inv.Sightings(ctx, 10)
		handheld := slices.ContainsFunc(as, func(a inventory.Asset) bool { return a.OS != "" && a.Type == "mobile_handheld" })
		if !st.Running && !st.LastEnd.IsZero() && len(as) >= 3 && len(ss) >= 1 && handheld {
			break
		}
	}
	token, err := viewerToken(ctx, sys)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var rep applianceReport
	rep.Discovery = d.Status()
	for _, x := range []struct {
		path string
		v    any
	}{{"/api/v1/assets", &rep.Assets}, {"/api/v1/sightings", &struct {
		S *[]inventory.Sighting `json:"sightings"`
	}{&rep.Sightings}}} {
		if err := apiGet(ctx, sys, token, x.path, x.v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

// runLabAppliance makes the appliance of a lab config and runs it until stop, which
// also closes it. The config has its state in state, the admin API on loopback without
// TLS, the distribution listener at distribution and the lab's device segment on eth0;
// sections adds the role's own.
func runLabAppliance(ctx context.Context, state, distribution, sections string) (sys *appliance.System, stop func(), err error) {
	yaml := fmt.Sprintf(`
state: {dir: %s}
admin: {listen: "127.0.0.1:0"}
distribution: {listen: %q}
auth: {tls: {mode: "off"}}
segments:
  - name: devices
    interface: eth0
    addresses: [198.51.100.2/24]
    clients: [198.51.100.0/24]
`, state, distribution) + sections
	cfg, err := config.Parse("lab.yaml", []byte(yaml))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	sys, err = appliance.New(ctx, cfg, appliance.Options{Clock: clock.Real{}})
	if err != nil {
		return nil, nil, fmt.Errorf("new: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sys.Run(runCtx) }()
	return sys, func() { cancel(); <-done; sys.Close() }, nil
}

// viewerToken makes a viewer account and an API token for it: the inventory and vendor
// host APIs want inventory.read.
func viewerToken(ctx context.Context, sys *appliance.System) (string, error) {
	const viewer = "lab-viewer"
	if err := sys.Auth().CreateUser(ctx, nil, viewer, "lab viewer password 0f the pharmacy", []auth.Role{auth.Viewer}); err != nil {
		return "", fmt.Errorf("viewer: %w", err)
	}
	token, _, err := sys.Auth().CreateToken(ctx, &auth.Principal{User: viewer, Roles: []auth.Role{auth.Viewer}, Method: "password"}, "lab", auth.Viewer, time.Hour)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return token, nil
}

// apiGet reads path of the admin API with token into v.
func apiGet(ctx context.Context, sys *appliance.System, token, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sys.AdminAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(b, v) != nil {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// TestApplianceInventory runs the real appliance (appliance.New from a config, every
// service) inside the lab with passive discovery and a scan, and reads its inventory
// API: the printer and the handheld are assets, keyed on their MACs and classified;
// the phone, seen only by its randomised MAC, is a sighting, not an asset; the
// excluded host is nowhere and got nothing.
func TestApplianceInventory(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: skipped under -short")
	}
	netlab.Require(t, "snmpd", "busybox", "socat", "tcpdump", "ss")
	env := newPharmacy(t)
	state := filepath.Join(env.dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := env.scanner.RoleCommand(ctx, "appliance", state, env.excluded.Addr.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("appliance: %v\n%s", err, stderr.String())
	}
	var rep applianceReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("appliance output: %v\n%s", err, out)
	}
	netlab.Stop(env.tcpdump)
	byID := map[string]inventory.Asset{}
	for _, a := range rep.Assets.Assets {
		t.Logf("%s %q %s vendor=%q model=%q fw=%q os=%q %v", a.ID, a.Name, a.Type, a.Vendor, a.Model, a.Firmware, a.OS, a.Addresses)
		byID[a.ID] = a
	}
	for _, s := range rep.Sightings {
		t.Logf("sighting %s %s %v", s.MAC, s.Addr, s.Sources)
	}
	p, ok := byID["mac:"+env.printer.MAC]
	if !ok || p.Type != "label_printer" || p.Serial != "18J123456789" || p.Firmware != "V75.20.01Z" || !p.New {
		t.Errorf("printer asset = %+v", p)
	}
	h, ok := byID["mac:"+env.handheld.MAC]
	if !ok || h.Type != "mobile_handheld" || h.OS != "Android 11" || h.Hostname != "TC52-PHARM-01" {
		t.Errorf("handheld asset = %+v", h)
	}
	if a, ok := byID["mac:"+env.announcer.MAC]; !ok || a.Type != "printer" {
		t.Errorf("announcer asset = %+v", a)
	}
	for id, a := range byID {
		if slices.Contains(a.Addresses, env.phone.Addr.String()) || slices.Contains(a.Addresses, env.excluded.Addr.String()) {
			t.Errorf("asset %s holds the phone's or the excluded host's address: %+v", id, a)
		}
	}
	if !slices.ContainsFunc(rep.Sightings, func(s inventory.Sighting) bool { return s.MAC == env.phone.MAC }) {
		t.Errorf("the phone (randomised MAC) is not a sighting: %+v", rep.Sightings)
	}
	if rep.Discovery.LastSummary.Live != 4 || rep.Discovery.LastError != "" || rep.Discovery.PassiveError != "" {
		t.Errorf("discovery status = %+v", rep.Discovery)
	}
	if b, err := os.ReadFile(env.rawBytes); err != nil || len(b) != 0 {
		t.Errorf("port 9100 received %d bytes (%v), want 0", len(b), err)
	}
	if addressed, broadcasts := countCapture(t, env.capPath, env.excluded.Addr, env.scanner.MAC); addressed != 0 || broadcasts == 0 {
		t.Errorf("excluded host: %d packets addressed to it (want 0), %d sweep broadcasts seen (want some)", addressed, broadcasts)
	}
}

package appliance

import (
	"context"
	"net/netip"
	"testing"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/netscan"
)

// TestInventoryAssetsForRollout: an agent's check-in becomes an asset the engine finds
// by agent and by address, with the ring an admin set.
func TestInventoryAssetsForRollout(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	inv, err := inventory.Open(ctx, db, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := inventoryAssets{inv}
	addr := netip.MustParseAddr("192.0.2.30")
	if err := x.AgentFacts(ctx, "ag-1", addr, agentapi.Facts{Hostname: "RX-WS-01", OS: "Windows", OSVersion: "11 Pro", OSBuild: "22631.4037", Serial: "5CG1234XYZ"}); err != nil {
		t.Fatal(err)
	}
	// An SNMP reading of the same device (same serial) joins the agent's asset.
	if err := inv.Observe(ctx, []netscan.Observation{{Source: netscan.SourceSNMP, Addr: addr,
		Facts: []netscan.Fact{{Key: netscan.KeySNMPSerial, Value: "5CG1234XYZ"}, {Key: netscan.KeySNMPSysObjectID, Value: "1.3.6.1.4.1.311.1.1.3.1.1"}}}}); err != nil {
		t.Fatal(err)
	}
	ring := "pilot"
	if _, _, err := inv.Update(ctx, "agent:ag-1", inventory.Attributes{Ring: &ring}, "alice"); err != nil {
		t.Fatal(err)
	}
	a, ok, err := x.ByAgent(ctx, "ag-1")
	if err != nil || !ok {
		t.Fatalf("ByAgent = %v, %v", ok, err)
	}
	if a.ID != "agent:ag-1" || a.AgentID != "ag-1" || a.Name != "RX-WS-01" || a.Ring != "pilot" || a.Type != "workstation" {
		t.Errorf("ByAgent = %+v", a)
	}
	b, ok, err := x.ByAddr(ctx, addr)
	if err != nil || !ok || b.ID != a.ID {
		t.Errorf("ByAddr = %+v, %v, %v; want the agent's asset", b, ok, err)
	}
	all, err := x.List(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("List = %d assets, %v; want 1", len(all), err)
	}
	full, err := inv.Get(ctx, a.ID)
	if err != nil || full.OS != "Windows 11 Pro (22631.4037)" || full.Serial != "5CG1234XYZ" {
		t.Errorf("asset OS %q serial %q (%v)", full.OS, full.Serial, err)
	}
}

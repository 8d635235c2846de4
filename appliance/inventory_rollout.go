package appliance

import (
	"context"
	"net/netip"
	"strings"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/netscan"
)

// inventoryAssets is the inventory as the rollout engine sees it: rollout.Assets (the
// serving gate maps a requester to an asset and its ring) and rollout.FactSink (what
// agents report at check-in becomes an observation of their device). Connect it with
// engine.SetAssets(inventoryAssets{s.assets}) and engine.SetFacts(...), and the
// engine's ObserveFirmware with s.assets.SetFirmwareObserver(engine).
type inventoryAssets struct{ inv *inventory.Inventory }

var (
	_ rollout.Assets   = inventoryAssets{}
	_ rollout.FactSink = inventoryAssets{}
)

func toRolloutAsset(a inventory.Asset) rollout.Asset {
	r := rollout.Asset{ID: a.ID, Name: a.Name, Ring: a.Ring, Segment: a.Segment, Tags: a.Tags, Type: a.Type,
		Firmware: a.Firmware, FirstSeen: a.FirstSeen}
	for _, id := range a.Identifiers {
		if v, ok := strings.CutPrefix(id, "agent:"); ok {
			r.AgentID = v
		}
	}
	return r
}

func (x inventoryAssets) ByAddr(ctx context.Context, addr netip.Addr) (rollout.Asset, bool, error) {
	a, ok, err := x.inv.ByAddr(ctx, addr)
	if err != nil || !ok {
		return rollout.Asset{}, false, err
	}
	return toRolloutAsset(a), true, nil
}

func (x inventoryAssets) ByAgent(ctx context.Context, agentID string) (rollout.Asset, bool, error) {
	a, ok, err := x.inv.ByIdentifier(ctx, "agent", agentID)
	if err != nil || !ok {
		return rollout.Asset{}, false, err
	}
	return toRolloutAsset(a), true, nil
}

func (x inventoryAssets) List(ctx context.Context) ([]rollout.Asset, error) {
	as, err := x.inv.List(ctx, inventory.Filter{})
	if err != nil {
		return nil, err
	}
	out := make([]rollout.Asset, len(as))
	for i, a := range as {
		out[i] = toRolloutAsset(a)
	}
	return out, nil
}

// AgentFacts merges an agent's check-in into the inventory as an observation of the
// device it runs on (keyed on the agent's ID, joined by serial or address).
func (x inventoryAssets) AgentFacts(ctx context.Context, agentID string, addr netip.Addr, f agentapi.Facts) error {
	o := netscan.Observation{Source: inventory.SourceAgent, Addr: addr.Unmap()}
	o.Add(inventory.KeyAgentID, agentID)
	o.Add(netscan.KeyHostname, f.Hostname)
	o.Add(inventory.KeyAgentSerial, f.Serial)
	os := strings.TrimSpace(f.OS + " " + f.OSVersion)
	if f.OSBuild != "" {
		os += " (" + f.OSBuild + ")"
	}
	o.Add(inventory.KeyAgentOS, os)
	return x.inv.Observe(ctx, []netscan.Observation{o})
}

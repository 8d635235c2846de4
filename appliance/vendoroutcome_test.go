package appliance

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/vendorhost"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/netscan"
)

// TestVendorReadBackDecidesDeployments: three agentless printers of the pilot ring are
// in a rollout of demo/hello.txt; the vendor hosts' read-back decides each one's
// deployment (issue 16): the target's version read back → succeeded, another version
// past the grace → failed with the version seen, a string that is no version → still
// pending with the string shown. Each is audited, and the compliance figures count
// the succeeded one as patched and the failed one as a failure.
func TestVendorReadBackDecidesDeployments(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	cfg := testConfig(t)
	cfg.Rollout.Gate = "enforce"
	cfg.Rollout.DefaultRing = ""
	cfg.Rollout.Windows = []rollout.SeedWindow{{Name: "always", Cron: "0 * * * *", Duration: conf.Duration(2 * time.Hour)}}
	sys := newSystem(t, cfg, Options{Build: Build{Version: "test"}, Clock: clk})
	e := sys.rollout

	ring := "pilot"
	ids := map[string]string{} // serial → asset id
	for i, serial := range []string{"ZT-OK", "ZT-OLD", "ZT-JUNK"} {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + i)})
		if err := sys.assets.Observe(ctx, []netscan.Observation{{Source: netscan.SourceSNMP, Addr: addr,
			Facts: []netscan.Fact{{Key: netscan.KeySNMPSerial, Value: serial}}}}); err != nil {
			t.Fatal(err)
		}
		a, ok, err := sys.assets.ByAddr(ctx, addr)
		if err != nil || !ok {
			t.Fatalf("asset at %s: %v %v", addr, ok, err)
		}
		if _, _, err := sys.assets.Update(ctx, a.ID, inventory.Attributes{Ring: &ring}, "alice"); err != nil {
			t.Fatal(err)
		}
		ids[serial] = a.ID
	}
	r := helloRollout(t, e, true)
	if _, err := e.Schedule(ctx, r.ID, "dora", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	dep := func(asset string) *rollout.Deployment {
		t.Helper()
		ds, err := e.Deployments(ctx, rollout.DeploymentFilter{RolloutID: r.ID, AssetID: asset})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deployments of %s: %+v %v, want one", asset, ds, err)
		}
		return ds[0]
	}
	for _, id := range ids {
		if d := dep(id); !d.State.Open() {
			t.Fatalf("deployment of %s is %s before any read-back, want open", id, d.State)
		}
	}

	clk.Advance(time.Hour)
	out := func(serial string, st vendorhost.OutcomeState, seen string, unparsed bool) vendorhost.Outcome {
		return vendorhost.Outcome{AssetID: ids[serial], Repo: "demo", Target: "hello.txt", URL: "updates.vendor.example/hello.txt",
			Version: "V75.20.02Z", State: st, Seen: seen, Unparsed: unparsed, FetchedAt: clk.Now().Add(-time.Hour), CheckedAt: clk.Now()}
	}
	for _, tc := range []struct {
		name       string
		o          vendorhost.Outcome
		want       rollout.DeploymentState // "" open (pending)
		wantDetail string
	}{
		{"fetched, nothing read yet: unchanged", out("ZT-OK", vendorhost.OutcomeNotYet, "", false), "", ""},
		{"the target's version: succeeded", out("ZT-OK", vendorhost.OutcomeInstalled, "V75.20.02Z", false), rollout.DepSucceeded, "V75.20.02Z"},
		{"another version past the grace: failed with it", out("ZT-OLD", vendorhost.OutcomeMismatch, "V75.20.01Z", false), rollout.DepFailed, "V75.20.01Z"},
		{"no version string: pending, shown", out("ZT-JUNK", vendorhost.OutcomeNotYet, "n/a", true), "", `"n/a" does not parse`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys.vendorOutcome(ctx, tc.o)
			d := dep(tc.o.AssetID)
			if tc.want == "" && !d.State.Open() || tc.want != "" && d.State != tc.want || !strings.Contains(d.Detail, tc.wantDetail) {
				t.Fatalf("deployment %s %q, want %q with detail containing %q", d.State, d.Detail, tc.want, tc.wantDetail)
			}
		})
	}

	recs, err := sys.audit.Records(ctx, audit.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		if rec.Actor == "system:vendorhost" {
			seen[rec.Action] = true
		}
	}
	for _, a := range []string{"deployment.succeeded", "deployment.failed", "deployment.pending", "vendorhost.outcome.installed"} {
		if !seen[a] {
			t.Errorf("no audit record %s by system:vendorhost (have %v)", a, seen)
		}
	}

	b := compliance.Builder{Source: complianceSource{e, sys}}
	rep, err := b.Build(ctx, clk.Now(), clk.Now().Add(-24*time.Hour), clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	var pilot compliance.Coverage
	for _, c := range rep.ByRing {
		if c.Key == "pilot" {
			pilot = c
		}
	}
	if rep.Items != 3 || pilot.Patched != 1 || pilot.Total != 3 || rep.WithinSLA.Patched != 1 {
		t.Errorf("compliance: %d items, pilot coverage %+v, within SLA %+v; want 3 items, 1 of 3 patched", rep.Items, pilot, rep.WithinSLA)
	}
	failures := 0
	for _, fr := range rep.FailedRate {
		failures += fr.Failures
	}
	if failures != 1 {
		t.Errorf("compliance failed-update rate %+v, want 1 failure", rep.FailedRate)
	}
}

package appliance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// problems are every service's current health problems.
func problems(sys *System) []health.Problem {
	var out []health.Problem
	for _, svc := range sys.services {
		out = append(out, svc.Health()...)
	}
	return out
}

func hasProblem(sys *System, code, text string) bool {
	for _, p := range problems(sys) {
		if p.Code == code && strings.Contains(p.Text, text) {
			return true
		}
	}
	return false
}

// helloRollout makes the release "hello 1" of the demo's hello.txt (requested by rita)
// and its one-stage rollout to the pilot ring; approved: submitted by rita and
// approved by anna.
func helloRollout(t *testing.T, e *rollout.Engine, approved bool) *rollout.Rollout {
	t.Helper()
	ctx := context.Background()
	rel, err := e.CreateRelease(ctx, "rita", rollout.Release{Name: "hello 1", Repo: "demo", Targets: []string{"hello.txt"}, Severity: rollout.High})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.CreateRollout(ctx, "rita", rollout.RolloutSpec{ReleaseID: rel.ID, Risk: "none", TestEvidence: "demo", RollbackPlan: "none",
		Stages: []rollout.Stage{{Ring: "pilot", SuccessPercent: 100, ErrorPercent: 50, MinResults: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if approved {
		if _, err := e.Submit(ctx, r.ID, "rita"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Approve(ctx, r.ID, "anna", "fine"); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// childConfig is a child of the parent at parentURL mirroring its demo repository, with
// rootFile pinned as the demo's root.
func childConfig(t *testing.T, parentURL, rootFile, token string) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	cfg.TUF.Demo.Enabled = false
	cfg.TUF.Demo.VendorHosts = nil
	cfg.VendorHost = config.Default().VendorHost
	cfg.Site = "north"
	roots := t.TempDir()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(roots, "demo.root.json"), root)
	cfg.Parent.URL, cfg.Parent.Repositories, cfg.Parent.Roots, cfg.Parent.EnrolToken = parentURL, []string{"demo"}, roots, conf.Secret(token)
	cfg.Parent.RefreshInterval = conf.Duration(10 * time.Second)
	cfg.FillParent()
	for _, p := range cfg.Validate() {
		if strings.HasPrefix(p.Key, "parent") || strings.HasPrefix(p.Key, "tuf") {
			t.Fatalf("child config: %v", p)
		}
	}
	return cfg
}

// startParent runs a parent appliance with the gate enforced and no default ring
// (edit changes its config first) and returns it with the path of its demo
// repository's root, which its children pin.
func startParent(t *testing.T, edit func(*config.Config)) (*System, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Rollout.Gate = "enforce"
	cfg.Rollout.DefaultRing = ""
	if edit != nil {
		edit(cfg)
	}
	parent, _, _ := startSystemWith(t, cfg)
	waitReady(t, parent)
	return parent, filepath.Join(cfg.State.Dir, "tuf-demo", "repository", "metadata", "1.root.json")
}

// downstreamToken makes a downstream enrolment token on the parent's engine.
func downstreamToken(t *testing.T, e *rollout.Engine, name string, uses int) string {
	t.Helper()
	tok, _, err := e.CreateToken(context.Background(), "dora", name, "", []string{rollout.DownstreamTag}, time.Hour, uses)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// waitParentMirror waits until the parent's demo mirror has verified metadata and
// returns its answer to a stranger asking for hello.txt.
func waitParentMirror(t *testing.T, parent *System) (code int, body string) {
	t.Helper()
	waitUntil(t, "the parent's demo mirror", 30*time.Second, func() bool {
		code, body = getWith(t, "http://"+parent.DistributionAddr()+"/repos/demo/targets/hello.txt", "")
		return code != 502
	})
	return code, body
}

// TestParentAndChild runs a parent with the gate enforced and children of it, all on
// loopback: a child enrolled with a downstream token gets an approved release's target
// from the parent before any ring of the parent is released, and serves it verified;
// a child pinning another root serves nothing and says why; a revoked child says so.
func TestParentAndChild(t *testing.T) {
	ctx := context.Background()
	parent, demoRoot := startParent(t, nil)
	e := parent.rollout
	tok := downstreamToken(t, e, "child north", 1)
	r := helloRollout(t, e, true)
	pdist := parent.DistributionAddr()
	// Without a credential the parent holds the target from a stranger (once its demo
	// mirror has verified metadata).
	if code, body := waitParentMirror(t, parent); code != 403 {
		t.Fatalf("the parent to a stranger: %d %s, want 403", code, body)
	}

	t.Run("child gets the release", func(t *testing.T) {
		child, _, _ := startSystemWith(t, childConfig(t, "http://"+pdist, demoRoot, tok))
		target := "http://" + child.DistributionAddr() + "/repos/demo/targets/hello.txt"
		var code int
		var body string
		waitUntil(t, "the child serves the parent's target", 30*time.Second, func() bool {
			code, body = getWith(t, target, "")
			return code == 200
		})
		if !strings.Contains(body, "Hello from Patchgate") {
			t.Errorf("the child served %q", body)
		}
		if child.fleet.AgentID() == "" || len(child.fleet.Health()) != 0 {
			t.Errorf("child link: id %q, health %v", child.fleet.AgentID(), child.fleet.Health())
		}
		// The parent made no deployment for the child: its devices are its own.
		if ds, err := e.Deployments(ctx, rollout.DeploymentFilter{RolloutID: r.ID}); err != nil || len(ds) != 0 {
			t.Errorf("parent deployments: %+v %v, want none", ds, err)
		}
		// Revoked on the parent: the child says so at its next check-in.
		if err := e.RevokeAgent(ctx, "dora", child.fleet.AgentID()); err != nil {
			t.Fatal(err)
		}
		child.fleet.Check(ctx)
		if !hasProblem(child, "parent-reenrolment-needed", "revoked") {
			t.Errorf("after revocation: %v", problems(child))
		}
	})

	t.Run("child pinning another root", func(t *testing.T) {
		other, err := PublishDemo(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		tok2 := downstreamToken(t, e, "child south", 1)
		child, _, _ := startSystemWith(t, childConfig(t, "http://"+pdist, other.RootPath(), tok2))
		waitUntil(t, "the child reports the root mismatch", 30*time.Second, func() bool {
			return hasProblem(child, "tuf-no-metadata", "repository demo: no verified metadata, nothing is served")
		})
		if code, _ := getWith(t, "http://"+child.DistributionAddr()+"/repos/demo/targets/hello.txt", ""); code == 200 {
			t.Error("a child with another root served the parent's target")
		}
	})
}

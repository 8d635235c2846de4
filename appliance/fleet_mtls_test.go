package appliance

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/fleet"
)

// TestParentAndChildOverMTLS: a child whose parent URL is the parent's agent TLS
// listener (client certificates required) enrols with a CSR, pins the parent's
// certificate and gets the release over mTLS; the parent counts the bytes per child
// and lists the child on its status page; a request with the child's credential but
// no client certificate is refused; a revoked child is refused at once and, while its
// token lets it, enrols again by itself (a rotated credential); a child pinning
// another certificate is refused and says so.
func TestParentAndChildOverMTLS(t *testing.T) {
	ctx := context.Background()
	parent, demoRoot := startParent(t, func(c *config.Config) {
		c.Rollout.AgentTLS.Listen = "127.0.0.1:0"
		c.Rollout.AgentTLS.RequireClientCert = true
	})
	e := parent.rollout
	// Two uses: the child's first enrolment and its re-enrolment after a revocation.
	tok := downstreamToken(t, e, "child north", 2)
	helloRollout(t, e, true)
	waitParentMirror(t, parent)
	purl := "https://" + parent.AgentTLSAddr()
	target := purl + "/repos/demo/targets/hello.txt"

	ccfg := childConfig(t, purl, demoRoot, tok)
	ccfg.Parent.Fingerprint = parent.AgentTLSFingerprint()
	child, _, _ := startSystemWith(t, ccfg)
	waitUntil(t, "the child serves the parent's target over mTLS", 30*time.Second, func() bool {
		code, _ := getWith(t, "http://"+child.DistributionAddr()+"/repos/demo/targets/hello.txt", "")
		return code == 200
	})
	if st := child.fleet.Status(); !st.MTLS || st.Pin == "" || len(child.fleet.Health()) != 0 {
		t.Fatalf("child link over mTLS: %+v, health %v", st, child.fleet.Health())
	}
	// The child's own client (its transport: pin, client certificate, credential).
	viaChild := func() (int, string) {
		t.Helper()
		c := &http.Client{Transport: child.fleet.Transport(nil)}
		resp, err := c.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := viaChild(); code != 200 || !strings.Contains(body, "Hello from Patchgate") {
		t.Fatalf("the child's transport to the parent: %d %q", code, body)
	}

	t.Run("parent counts and lists the child", func(t *testing.T) {
		st := panelData[fleet.ChildrenStatus](t, parent, "children")
		if len(st.Children) != 1 || st.Children[0].Name != "north" || st.Children[0].Bytes == 0 || st.Children[0].Share != 100 || st.Children[0].Health != "ok" {
			t.Fatalf("children panel: %+v", st)
		}
		code, body := fetch(t, "GET", "http://"+parent.AdminAddr()+"/metrics", nil)
		if code != 200 || !strings.Contains(body, `patchgate_fleet_child_served_bytes_total{child="north"}`) {
			t.Errorf("/metrics lacks the child's bytes:\n%.3000s", body)
		}
		code, body = fetch(t, "GET", "http://"+parent.AdminAddr()+"/", nil)
		if code != 200 || !strings.Contains(body, `<table id="children">`) || !strings.Contains(body, "north") {
			t.Errorf("status page lacks the children table (%d):\n%.3000s", code, body)
		}
	})

	t.Run("credential without client certificate", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		req, _ := http.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+credentialOf(t, child))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), "client certificate is required") {
			t.Errorf("no client certificate: %d %s, want 401 naming the certificate", resp.StatusCode, b)
		}
	})

	t.Run("revoked, then re-enrolled", func(t *testing.T) {
		old := child.fleet.AgentID()
		if err := e.RevokeAgent(ctx, "dora", old); err != nil {
			t.Fatal(err)
		}
		if code, _ := viaChild(); code != 401 {
			t.Fatalf("revoked child: %d, want 401 at once", code)
		}
		// The token has a use left: the next check-in enrols again (a new identity and
		// client certificate) and fetching works again.
		if err := child.fleet.Check(ctx); err != nil {
			t.Fatalf("check-in after revocation: %v", err)
		}
		if id := child.fleet.AgentID(); id == old || id == "" || len(child.fleet.Health()) != 0 {
			t.Fatalf("after re-enrolment: id %q (was %q), health %v", id, old, child.fleet.Health())
		}
		if code, _ := viaChild(); code != 200 {
			t.Fatalf("re-enrolled child: %d, want 200", code)
		}
		// Revoked again with the token spent: refused, and health says re-enrolment is needed.
		if err := e.RevokeAgent(ctx, "dora", child.fleet.AgentID()); err != nil {
			t.Fatal(err)
		}
		child.fleet.Check(ctx)
		if !hasProblem(child, "parent-reenrolment-needed", "enrolling again with parent.enrol_token failed") {
			t.Errorf("after revocation with a spent token: %v", problems(child))
		}
		if code, _ := viaChild(); code != 401 {
			t.Errorf("revoked child with a spent token: %d, want 401", code)
		}
	})

	t.Run("wrong pin", func(t *testing.T) {
		tok2 := downstreamToken(t, e, "child south", 1)
		cfg := childConfig(t, purl, demoRoot, tok2)
		cfg.Parent.Fingerprint = strings.Repeat("AB:", 31) + "AB"
		other, _, _ := startSystemWith(t, cfg)
		other.fleet.Check(ctx)
		if !hasProblem(other, "parent-certificate-mismatch", "pinned") || other.fleet.AgentID() != "" {
			t.Errorf("wrong pin: id %q, %v", other.fleet.AgentID(), problems(other))
		}
		if code, _ := getWith(t, "http://"+other.DistributionAddr()+"/repos/demo/targets/hello.txt", ""); code == 200 {
			t.Error("a child pinning another certificate served the parent's target")
		}
	})
}

// credentialOf is the child's credential on its parent, from its state file.
func credentialOf(t *testing.T, child *System) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(child.cfg.State.Path("fleet"), "credential.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Credential string }
	if err := json.Unmarshal(data, &c); err != nil || c.Credential == "" {
		t.Fatalf("credential file: %v", err)
	}
	return c.Credential
}

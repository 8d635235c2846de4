package appliance

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/compliance"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/notify"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/netscan"
)

const wiringKEV = `{"catalogVersion":"2026.12.05","vulnerabilities":[
 {"cveID":"CVE-2026-1001","vendorProject":"Zebra","product":"ZT410","dateAdded":"2026-12-04","dueDate":"2099-01-07"},
 {"cveID":"CVE-2026-2002","vendorProject":"OpenSSL","product":"OpenSSL","dateAdded":"2026-12-01","dueDate":"2099-01-20"}]}`

// wiringOSV is an OSV export: the printer's firmware is not in OSV, the agent's
// openssl is.
const wiringOSV = `[{"id":"DSA-5999-1","aliases":["CVE-2026-2002"],"summary":"openssl","affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
  "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.15-1~deb12u1"}]}],"database_specific":{"severity":"high"}}]}]`

// wiringCSAF is a vendor's advisory: the ZT410 at V75.20.01Z is affected.
const wiringCSAF = `{"document": {"csaf_version": "2.0", "title": "ZT410 firmware", "tracking": {"id": "ZEBRA-2026-001"}},
 "product_tree": {"branches": [{"category": "vendor", "name": "Zebra Technologies", "branches": [{"category": "product_name", "name": "ZT410",
  "branches": [{"category": "product_version", "name": "V75.20.01Z", "product": {"product_id": "P1", "name": "Zebra ZT410 V75.20.01Z"}}]}]}]},
 "vulnerabilities": [{"cve": "CVE-2026-1001", "product_status": {"known_affected": ["P1"]}}]}`

// signedImport is a zip of doc and its detached signature by a new key, and that
// key's public half, armored.
func signedImport(t *testing.T, doc string) (zipped []byte, public []byte) {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return time.Now().Add(-time.Hour) }}
	e, err := openpgp.NewEntity("psirt", "", "psirt@vendor.example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sig, pub, z bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, e, strings.NewReader(doc), cfg); err != nil {
		t.Fatal(err)
	}
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err == nil && e.Serialize(w) == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(&z)
	for name, body := range map[string][]byte{"zebra.json": []byte(doc), "zebra.json.asc": sig.Bytes()} {
		f, err := zw.Create(name)
		if err == nil {
			_, err = f.Write(body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes(), pub.Bytes()
}

// TestAdvisoryWiring: a KEV feed on loopback and an imported OSV export, matched
// against a discovered printer and an agent's packages by the running appliance: the
// KEV marks the staged release known-exploited, the exploited findings are notified
// and an emergency rollout of the release fixing one is drafted (not approved); the
// exposure page and API show them with their deadlines, and the compliance report
// counts them by severity and age, then links the closed one to its release.
func TestAdvisoryWiring(t *testing.T) {
	posts := make(chan notify.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Kind    notify.Kind `json:"kind"`
			Subject string      `json:"subject"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err == nil && p.Kind == notify.ExploitedVulnerability {
			posts <- notify.Event{Kind: p.Kind, Subject: p.Subject}
		}
	}))
	t.Cleanup(hook.Close)
	feeds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/kev.json" {
			io.WriteString(w, wiringKEV)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(feeds.Close)

	cfg := testConfig(t)
	cfg.Notify.Enabled = true
	cfg.Notify.Webhooks = []notify.Webhook{{Name: "test", URL: hook.URL, Secret: conf.Secret("0123456789abcdef")}}
	cfg.Notify.Recipients = []notify.Recipient{{Webhook: "test", Events: []string{"all"}}}
	cfg.Advisory.Feeds = []advisory.Feed{{Name: "kev", Kind: advisory.KindKEV, URL: feeds.URL + "/kev.json"}}
	csafZip, key := signedImport(t, wiringCSAF)
	cfg.Advisory.ImportKeyFile = filepath.Join(t.TempDir(), "vendor.asc")
	writeFile(t, cfg.Advisory.ImportKeyFile, key)
	sys, _, _ := startSystemWith(t, cfg)
	waitReady(t, sys)
	ctx := context.Background()

	// The inventory: a discovered printer and a Debian workstation with an agent.
	addr := netip.MustParseAddr("192.0.2.40")
	if err := sys.assets.Observe(ctx, []netscan.Observation{{Source: netscan.SourceSNMP, Addr: addr,
		Facts: []netscan.Fact{{Key: netscan.KeySNMPSerial, Value: "ZT-0001"}}}}); err != nil {
		t.Fatal(err)
	}
	printers, err := sys.assets.List(ctx, inventory.Filter{})
	if err != nil || len(printers) != 1 {
		t.Fatalf("inventory = %v, %v", printers, err)
	}
	vendor, model, fw, name := "Zebra Technologies", "ZT410", "V75.20.01Z", "label-printer"
	if _, _, err := sys.assets.Update(ctx, printers[0].ID, inventory.Attributes{Name: &name, Vendor: &vendor, Model: &model, Firmware: &fw}, "alice"); err != nil {
		t.Fatal(err)
	}
	tee := advisoryFacts{inventoryAssets{sys.assets}, sys.advisory}
	if err := tee.AgentFacts(ctx, "a1", netip.MustParseAddr("192.0.2.41"), agentapi.Facts{Hostname: "rx-ws-01", OS: "linux",
		OSVersion: "Debian GNU/Linux 12 (bookworm)", OSBuild: "6.1.0-28-amd64",
		Packages: []agentapi.Package{{Name: "openssl", Version: "3.0.11-1~deb12u2"}}}); err != nil {
		t.Fatal(err)
	}

	// A release fixing the printer's CVE is staged (not known-exploited yet).
	rel, err := sys.rollout.CreateRelease(ctx, "rita", rollout.Release{Name: "zt410-fw-75.20.02", Repo: "demo", Targets: []string{"hello.txt"},
		Severity: rollout.High, CVEs: []string{"CVE-2026-1001"}, Published: sys.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}

	// The KEV feed (fetched at start, again now) and offline imports: an OSV export
	// and a signed CSAF advisory.
	if st, err := sys.advisory.Fetch(ctx, "kev"); err != nil || st.Result != "ok" {
		t.Fatalf("Fetch(kev) = %+v, %v", st, err)
	}
	if r, err := sys.rollout.Release(ctx, rel.ID); err != nil || !r.KnownExploited {
		t.Fatalf("release after the KEV feed: known-exploited %v (%v), want true", r != nil && r.KnownExploited, err)
	}
	viewer, requester := apiToken(t, sys, auth.Viewer), apiToken(t, sys, auth.Requester)
	admin := "http://" + sys.AdminAddr()
	// The status page's feeds panel: last success and advisories stored.
	if code, page := getWith(t, admin+"/", ""); code != http.StatusOK || !strings.Contains(page, `id="advisory-feeds"`) ||
		!strings.Contains(page, "<td>kev</td>") || strings.Contains(page, "could not be drawn") {
		t.Errorf("status page (%d) lacks a drawn advisory feeds panel", code)
	}
	if st := sys.advisory.Status(); len(st.Feeds) != 1 || st.Feeds[0].Documents != 2 || st.Feeds[0].LastSuccess == nil {
		t.Errorf("advisory status = %+v; want kev with 2 entries and a last success", st)
	}
	if code, body := fetch(t, "POST", admin+"/api/v1/advisory/import?name=debian-osv.json", strings.NewReader(wiringOSV),
		"Authorization", requester, "Content-Type", "application/json"); code != http.StatusOK {
		t.Fatalf("import = %d %s", code, body)
	}
	if code, body := fetch(t, "POST", admin+"/api/v1/advisory/import?name=zebra.zip", bytes.NewReader(csafZip),
		"Authorization", requester, "Content-Type", "application/zip"); code != http.StatusOK {
		t.Fatalf("import = %d %s", code, body)
	}
	if err := sys.advisory.Match(ctx); err != nil {
		t.Fatal(err)
	}

	// Notified: both exploited findings; the printer's with an emergency draft.
	got := map[string]bool{}
	for range 2 {
		select {
		case e := <-posts:
			got[e.Subject] = true
		case <-time.After(60 * time.Second):
			t.Fatalf("exploited notifications: got %v, want 2", got)
		}
	}
	var drafted bool
	for s := range got {
		drafted = drafted || strings.Contains(s, "CVE-2026-1001 on label-printer; emergency rollout")
	}
	if !drafted || !got["Known-exploited CVE-2026-2002 on rx-ws-01; no staged release fixes it yet"] {
		t.Errorf("notifications %v", got)
	}
	ros, err := sys.rollout.Rollouts(ctx)
	if err != nil || len(ros) != 1 || !ros[0].Emergency || ros[0].State != rollout.Draft || ros[0].ReleaseID != rel.ID || ros[0].CreatedBy != advisoryActor {
		t.Fatalf("rollouts = %+v, %v; want one emergency draft of release %d by %s", ros, err, rel.ID, advisoryActor)
	}

	// The exposure page and the per-asset API.
	code, page := fetch(t, "GET", admin+"/exposure", nil, "Authorization", viewer, "Accept", "text/html")
	if code != http.StatusOK || !strings.Contains(page, "CVE-2026-1001") || !strings.Contains(page, "zt410-fw-75.20.02") || strings.Contains(page, "<script") {
		t.Errorf("GET /exposure = %d\n%s", code, page)
	}
	// One device's list: the printer's findings, not the workstation's.
	code, page = fetch(t, "GET", admin+"/exposure?asset="+printers[0].ID, nil, "Authorization", viewer, "Accept", "text/html")
	if code != http.StatusOK || !strings.Contains(page, "Exposure of label-printer") || !strings.Contains(page, "CVE-2026-1001") || strings.Contains(page, "rx-ws-01") {
		t.Errorf("GET /exposure?asset=printer = %d\n%s", code, page)
	}
	code, body := fetch(t, "GET", admin+"/api/v1/exposure/"+printers[0].ID, nil, "Authorization", viewer)
	var one struct{ Findings []advisory.Finding }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &one) != nil || len(one.Findings) != 1 {
		t.Fatalf("GET exposure of the printer = %d %s", code, body)
	}
	f := one.Findings[0]
	// Exploited: the critical SLA (72 h) from when it was found, the KEV due date being later.
	if !f.Exploited || f.Severity != "unknown" || !f.Deadline.Equal(f.FirstSeen.Add(72*time.Hour)) || f.ReleaseID == "" {
		t.Errorf("printer finding = %+v; want exploited, deadline first seen + 72h, release linked", f)
	}

	// The compliance report counts the open findings, then links the closed one.
	b := &compliance.Builder{Findings: advisoryFindings{sys}}
	now := sys.clock.Now()
	rep, err := b.Build(ctx, now, now.Add(-24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	open, exploited := 0, 0
	for _, c := range rep.Vulnerabilities.Open {
		open, exploited = open+c.Open, exploited+c.Exploited
	}
	if open != 2 || exploited != 2 || rep.Vulnerabilities.Open[1].Severity != "high" || rep.Vulnerabilities.Open[1].Ages[0].Count != 1 {
		t.Errorf("report vulnerabilities = %+v; want 2 open, 2 exploited, one high aged 0-7 days", rep.Vulnerabilities.Open)
	}
	fixed := "V75.20.02Z"
	if _, _, err := sys.assets.Update(ctx, printers[0].ID, inventory.Attributes{Firmware: &fixed}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := sys.advisory.Match(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = b.Build(ctx, sys.clock.Now(), now.Add(-24*time.Hour), sys.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Vulnerabilities.Closed; len(c) != 1 || c[0].Vuln != "CVE-2026-1001" || c[0].Release != "zt410-fw-75.20.02" {
		t.Errorf("closed findings = %+v; want CVE-2026-1001 closed by zt410-fw-75.20.02", c)
	}
}

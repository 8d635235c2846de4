package advisory_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
)

const kevJSON = `{"title":"CISA Catalog of Known Exploited Vulnerabilities","catalogVersion":"2026.12.05","dateReleased":"2026-12-05T10:00:00.000Z","count":3,
 "vulnerabilities":[
  {"cveID":"CVE-2026-1001","vendorProject":"Zebra","product":"ZT410","vulnerabilityName":"Zebra ZT410 firmware RCE","dateAdded":"2026-12-04","dueDate":"2026-12-07"},
  {"cveID":"CVE-2026-2002","vendorProject":"OpenSSL","product":"OpenSSL","dateAdded":"2026-12-01","dueDate":"2026-12-20"},
  {"cveID":"CVE-2026-3003","vendorProject":"Omnicell","product":"XT Cabinet","vulnerabilityName":"Omnicell XT auth bypass","dateAdded":"2026-12-02","dueDate":"2026-12-23"}]}`

// csafDoc affects the ZT410 at V75.20.01Z (fixed in V75.20.02Z) and, without any
// version or vendor, a ZD421.
const csafDoc = `{
 "document": {"category": "csaf_security_advisory", "csaf_version": "2.0", "title": "Zebra printer firmware",
  "publisher": {"category": "vendor", "name": "Zebra", "namespace": "https://vendor.example"},
  "tracking": {"id": "ZEBRA-2026-001", "initial_release_date": "2026-12-03T00:00:00Z", "current_release_date": "2026-12-03T00:00:00Z",
   "status": "final", "version": "1", "revision_history": []}},
 "product_tree": {
  "branches": [{"category": "vendor", "name": "Zebra Technologies", "branches": [
   {"category": "product_name", "name": "ZT410", "branches": [
    {"category": "product_version", "name": "V75.20.01Z", "product": {"product_id": "ZT410-1", "name": "Zebra ZT410 V75.20.01Z",
      "product_identification_helper": {"cpe": "cpe:2.3:o:zebra:zt410_firmware:v75.20.01z:*:*:*:*:*:*:*"}}},
    {"category": "product_version", "name": "V75.20.02Z", "product": {"product_id": "ZT410-2", "name": "Zebra ZT410 V75.20.02Z"}}]}]}],
  "full_product_names": [{"product_id": "ZD421", "name": "ZD421 desktop printer", "product_identification_helper": {"model_numbers": ["ZD421"]}}]},
 "vulnerabilities": [
  {"cve": "CVE-2026-1001", "title": "Remote code execution", "product_status": {"known_affected": ["ZT410-1"], "fixed": ["ZT410-2"]},
   "scores": [{"products": ["ZT410-1"], "cvss_v3": {"version": "3.1", "baseScore": 8.1, "baseSeverity": "HIGH", "vectorString": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}}]},
  {"cve": "CVE-2026-1005", "title": "Information disclosure", "product_status": {"known_affected": ["ZD421"]},
   "scores": [{"products": ["ZD421"], "cvss_v3": {"version": "3.1", "baseScore": 5.3, "baseSeverity": "MEDIUM", "vectorString": "x"}}]}]}`

const osvOpenSSL = `{"id": "DSA-5999-1", "aliases": ["CVE-2026-2002"], "summary": "openssl security update", "published": "2026-12-01T00:00:00Z",
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.15-1~deb12u1"}]}],
  "database_specific": {"severity": "critical"}}]}`

// feedServer is the loopback KEV, CSAF provider and OSV API.
type feedServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	osv   map[string]string // package@version → answer
	posts int
	gets  map[string]int // path → GETs answered
	// cond: paths answered with validators and 304 to a conditional request that
	// still matches, "etag" (a digest of the body) or "modified" (modified[path]).
	cond        map[string]string
	modified    map[string]time.Time
	notModified int // 304 answers
}

func newFeedServer(t *testing.T, p provider) *feedServer {
	t.Helper()
	fs := &feedServer{files: map[string][]byte{}, gets: map[string]int{}, cond: map[string]string{}, modified: map[string]time.Time{}, osv: map[string]string{
		"openssl@3.0.11-1~deb12u2": `{"vulns": [` + osvOpenSSL + `]}`,
	}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	doc := []byte(csafDoc)
	fs.set("/kev.json", []byte(kevJSON))
	fs.set("/.well-known/csaf/provider-metadata.json", []byte(`{"canonical_url": "`+fs.URL+`/.well-known/csaf/provider-metadata.json",
		"publisher": {"name": "Zebra", "category": "vendor", "namespace": "https://vendor.example"}, "role": "csaf_trusted_provider",
		"distributions": [{"directory_url": "`+fs.URL+`/csaf/white/"}], "public_openpgp_keys": []}`))
	fs.set("/csaf/white/index.txt", []byte("2026/zebra-2026-001.json\n"))
	fs.set("/csaf/white/2026/zebra-2026-001.json", doc)
	fs.set("/csaf/white/2026/zebra-2026-001.json.asc", p.sign(t, doc))
	fs.set("/csaf/white/2026/zebra-2026-001.json.sha256", sha256File(doc, "zebra-2026-001.json"))
	return fs
}

func (fs *feedServer) set(path string, b []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if b == nil {
		delete(fs.files, path)
		return
	}
	fs.files[path] = b
}

func (fs *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/osv/v1/query" {
		fs.posts++
		var q struct {
			Package struct{ Name, Ecosystem string }
			Version string
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&q); err != nil || q.Package.Ecosystem == "" {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		ans, ok := fs.osv[q.Package.Name+"@"+q.Version]
		if !ok {
			ans = `{}`
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, ans)
		return
	}
	b, ok := fs.files[r.URL.Path]
	fs.gets[r.URL.Path]++
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch fs.cond[r.URL.Path] {
	case "etag":
		sum := sha256.Sum256(b)
		tag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", tag)
		if r.Header.Get("If-None-Match") == tag {
			fs.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	case "modified":
		m := fs.modified[r.URL.Path]
		w.Header().Set("Last-Modified", m.UTC().Format(http.TimeFormat))
		if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !m.Truncate(time.Second).After(ims) {
			fs.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Write(b)
}

// inventory is a fixed set of assets: discovered devices and one agent.
type inventory []advisory.Asset

func (inv inventory) MatchAssets(context.Context) ([]advisory.Asset, error) {
	return append([]advisory.Asset(nil), inv...), nil
}

var site = inventory{
	{ID: "printer-1", Name: "printer-1", Vendor: "Zebra Technologies", Model: "ZT410", Firmware: "V75.20.01Z"},
	{ID: "printer-2", Name: "printer-2", Vendor: "Zebra Technologies", Model: "ZT410", Firmware: "V75.20.02Z"},
	{ID: "label-1", Name: "label-1", Vendor: "Zebra Technologies", Model: "ZD421"},
	{ID: "cabinet-1", Name: "cabinet-1", Vendor: "Omnicell", Model: "XT Cabinet", Firmware: "4.2"},
	{ID: "ws-1", Name: "ws-1", OSName: "Debian GNU/Linux 12", OSBuild: "12.8", AgentID: "a1"},
}

type staged []advisory.Release

func (s staged) FixReleases(context.Context) ([]advisory.Release, error) { return s, nil }

// policyDeadline is the rollout SLA policy's deadline of a finding: as a release of
// the finding's severity published when it was first seen, known-exploited with the
// KEV due date when the catalog lists it.
func policyDeadline(f advisory.Finding) time.Time {
	sev := rollout.Severity(f.Severity)
	if f.Severity == advisory.Unknown {
		sev = rollout.Low
	}
	r := &rollout.Release{Severity: sev, KnownExploited: f.Exploited, Published: f.FirstSeen}
	if f.KEVDue != "" {
		r.KEVDue = advisory.KEVEntry{Due: f.KEVDue}.DueAt(time.UTC, rollout.KEVDayStart)
	}
	return rollout.DefaultPolicy().Deadline(r, f.FirstSeen)
}

type env struct {
	svc       *advisory.Service
	srv       *feedServer
	clk       *clock.Fake
	exploited chan []advisory.Finding
	p         provider
	db        *store.DB
	sec       advisory.Section
}

func newEnv(t *testing.T, mutate func(*advisory.Section, provider)) *env {
	t.Helper()
	p := newProvider(t)
	srv := newFeedServer(t, p)
	sec := advisory.Section{MaxSize: 1 << 20, Feeds: []advisory.Feed{
		{Name: "kev", Kind: advisory.KindKEV, URL: srv.URL + "/kev.json"},
		{Name: "zebra", Kind: advisory.KindCSAF, URL: srv.URL + "/.well-known/csaf/provider-metadata.json", Key: p.public(t)},
		{Name: "osv", Kind: advisory.KindOSV, URL: srv.URL + "/osv"},
	}}
	if mutate != nil {
		mutate(&sec, p)
	}
	e := &env{srv: srv, clk: clock.NewFake(t0), exploited: make(chan []advisory.Finding, 10), p: p}
	e.db, e.sec = storetest.Open(t), sec
	svc, err := advisory.Open(context.Background(), e.db, sec, advisory.Options{Clock: e.clk,
		Assets: site, Releases: staged{{ID: "7", Name: "zt410-fw-75.20.02", CVEs: []string{"CVE-2026-1001"}}},
		Deadline:  policyDeadline,
		Exploited: func(_ context.Context, fs []advisory.Finding) { e.exploited <- fs }})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	if err := svc.AgentPackages(context.Background(), "a1", advisory.PackageSet{Ecosystem: "Debian:12",
		Packages: []advisory.Package{{Name: "openssl", Version: "3.0.11-1~deb12u2"}, {Name: "bash", Version: "5.2.15-2+b7"}}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// putSigned serves a CSAF document at path with its signature and digest.
func (e *env) putSigned(t *testing.T, path string, body []byte) {
	t.Helper()
	e.srv.set(path, body)
	e.srv.set(path+".asc", e.p.sign(t, body))
	e.srv.set(path+".sha256", sha256File(body, "x.json"))
}

// findingTitles matches, then lists an asset's open findings as "VULN title", joined
// by commas.
func (e *env) findingTitles(t *testing.T, asset string) string {
	t.Helper()
	if err := e.svc.Match(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, err := e.svc.Findings(context.Background(), asset, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.Vuln+" "+f.Title)
	}
	return strings.Join(out, ",")
}

func (e *env) fetchAll(t *testing.T) {
	t.Helper()
	for _, f := range e.svc.Feeds() {
		st, err := e.svc.Fetch(context.Background(), f.Name)
		if err != nil || st.Result != "ok" {
			t.Fatalf("Fetch(%s) = %+v, %v; want ok", f.Name, st, err)
		}
	}
	if err := e.svc.Match(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFeedsMatchedToInventory is the done-test: KEV, a signed CSAF provider and OSV
// on loopback, matched against discovered devices and an agent's packages, with the
// evidence, ambiguity, fixing release and SLA deadline of each.
func TestFeedsMatchedToInventory(t *testing.T) {
	e := newEnv(t, nil)
	e.fetchAll(t)
	fs, err := e.svc.Findings(context.Background(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]advisory.Finding{}
	for _, f := range fs {
		got[f.AssetID+" "+f.Vuln] = f
	}
	tests := []struct {
		name, key string
		severity  string
		exploited bool
		ambiguous bool
		release   string
		deadline  time.Time
		evidence  string
	}{
		{"firmware listed as affected, exploited, fix staged", "printer-1 CVE-2026-1001", "high", true, false, "zt410-fw-75.20.02",
			time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), // KEV due 12-07 (end of day) beats 72 h
			`"ZT410" firmware V75.20.01Z matches cpe cpe:2.3:o:zebra:zt410_firmware`},
		{"agent package in the OSV range, exploited, no release", "ws-1 CVE-2026-2002", "critical", true, false, "",
			t0.Add(72 * time.Hour), "package openssl 3.0.11-1~deb12u2 (Debian:12) is in the affected range [0, 3.0.15-1~deb12u1)"},
		{"model without firmware version: ambiguous", "label-1 CVE-2026-1005", "medium", false, true, "", time.Time{},
			"vendor not known on both sides"},
		{"KEV names only vendor and product: ambiguous", "cabinet-1 CVE-2026-3003", "unknown", true, true, "", time.Time{},
			"the catalog names no versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := got[tt.key]
			if !ok {
				t.Fatalf("no finding %s; have %v", tt.key, keys(got))
			}
			if f.Severity != tt.severity || f.Exploited != tt.exploited || f.Ambiguous != tt.ambiguous || f.ReleaseName != tt.release {
				t.Errorf("finding = severity %s, exploited %v, ambiguous %v, release %q; want %s, %v, %v, %q",
					f.Severity, f.Exploited, f.Ambiguous, f.ReleaseName, tt.severity, tt.exploited, tt.ambiguous, tt.release)
			}
			if !f.Deadline.Equal(tt.deadline) {
				t.Errorf("deadline = %v, want %v", f.Deadline, tt.deadline)
			}
			if !strings.Contains(f.Evidence, tt.evidence) {
				t.Errorf("evidence = %q, want it to contain %q", f.Evidence, tt.evidence)
			}
		})
	}
	if _, ok := got["printer-2 CVE-2026-1001"]; ok {
		t.Error("printer-2 runs the fixed firmware but was matched")
	}
	if len(got) != len(tests) {
		t.Errorf("%d findings, want %d: %v", len(got), len(tests), keys(got))
	}

	// Exploited and unambiguous findings are announced once.
	select {
	case news := <-e.exploited:
		if len(news) != 2 {
			t.Errorf("announced %d exploited findings, want 2 (printer-1, ws-1): %+v", len(news), news)
		}
	default:
		t.Fatal("no exploited findings announced")
	}
	if err := e.svc.Match(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case news := <-e.exploited:
		t.Errorf("announced again: %+v", news)
	default:
	}

	// The exposure summary counts only unambiguous findings.
	ex, err := e.svc.Exposure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var open, amb, exploited int
	for _, a := range ex.Assets {
		open, amb, exploited = open+a.Open, amb+a.Ambiguous, exploited+a.Exploited
	}
	if open != 2 || amb != 2 || exploited != 2 {
		t.Errorf("exposure: open %d, ambiguous %d, exploited %d; want 2, 2, 2", open, amb, exploited)
	}
	if len(ex.OpenFindings())+len(ex.AmbiguousFindings()) != len(ex.Findings) || len(ex.AmbiguousFindings()) != 2 {
		t.Errorf("exposure: %d open and %d ambiguous findings of %d; want the 2 ambiguous apart", len(ex.OpenFindings()), len(ex.AmbiguousFindings()), len(ex.Findings))
	}
	// The per-asset list: one asset's findings only.
	one, err := e.svc.ExposureOf(context.Background(), "ws-1")
	if err != nil {
		t.Fatal(err)
	}
	if one.AssetID != "ws-1" || len(one.Findings) == 0 || len(one.Assets) != 1 || one.Assets[0].AssetID != "ws-1" {
		t.Errorf("ExposureOf(ws-1) = %+v; want ws-1's findings only", one)
	}
	for _, f := range one.Findings {
		if f.AssetID != "ws-1" {
			t.Errorf("ExposureOf(ws-1) lists %s of %s", f.Vuln, f.AssetID)
		}
	}

	// The agent upgrades openssl: its finding closes.
	e.clk.Advance(time.Hour)
	if err := e.svc.AgentPackages(context.Background(), "a1", advisory.PackageSet{Ecosystem: "Debian:12",
		Packages: []advisory.Package{{Name: "openssl", Version: "3.0.15-1~deb12u1"}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Match(context.Background()); err != nil {
		t.Fatal(err)
	}
	all, err := e.svc.Findings(context.Background(), "ws-1", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].State() != "closed" || !all[0].ClosedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("ws-1 findings after the upgrade = %+v, want CVE-2026-2002 closed at %v", all, t0.Add(time.Hour))
	}
}

func keys(m map[string]advisory.Finding) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestScheduledFetch: Run fetches every feed at once and again after its interval
// (fake clock); a refusal in between keeps the data fetched before.
func TestScheduledFetch(t *testing.T) {
	e := newEnv(t, func(s *advisory.Section, _ provider) { s.Interval = conf.Duration(time.Hour) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first fetches", func() bool { return allResult(e.svc, "ok") })
	e.srv.set("/kev.json", []byte(`<html>maintenance</html>`))
	// Run waits on the interval of each feed and on the rematch timer.
	waitFor(t, "the feeds to wait", func() bool { return e.clk.Waiters() >= 4 })
	for _, f := range e.svc.Feeds() {
		if f.NextRun == nil || !f.NextRun.Equal(t0.Add(time.Hour)) || f.LastSuccess == nil || f.Documents == 0 {
			t.Errorf("feed %s: next run %v, last success %v, %d documents; want %v, %v, some", f.Name, f.NextRun, f.LastSuccess, f.Documents, t0.Add(time.Hour), t0)
		}
	}
	e.clk.Advance(time.Hour)
	waitFor(t, "the second KEV fetch", func() bool { return e.svc.Feeds()[0].Result == "refused" })
	srcs, err := e.svc.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if srcs[0].Source != "kev" || srcs[0].KEV != 3 {
		t.Errorf("stored sources = %+v, want the previous KEV (3 entries) kept", srcs)
	}
	if st := e.svc.Feeds()[0]; st.LastError == "" || st.LastErrorAt == nil || st.Documents != 3 || st.LastSuccess == nil || !st.LastSuccess.Equal(t0) {
		t.Errorf("refused KEV status = %+v; want the last error, 3 entries and the earlier success", st)
	}
}

func allResult(s *advisory.Service, want string) bool {
	for _, f := range s.Feeds() {
		if f.Result != want {
			return false
		}
	}
	return true
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestStatusAfterRestart: a service opened on stored data shows each feed's last
// success and count before its first fetch.
func TestStatusAfterRestart(t *testing.T) {
	e := newEnv(t, nil)
	e.fetchAll(t)
	again, err := advisory.Open(context.Background(), e.db, e.sec, advisory.Options{Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"kev": 3, "zebra": 2, "osv": 1}
	for _, f := range again.Status().Feeds {
		if f.Result != "never" || f.LastSuccess == nil || !f.LastSuccess.Equal(t0) || f.Documents != want[f.Name] {
			t.Errorf("feed %s after restart: %s, last success %v, %d documents; want never, %v, %d", f.Name, f.Result, f.LastSuccess, f.Documents, t0, want[f.Name])
		}
	}
}

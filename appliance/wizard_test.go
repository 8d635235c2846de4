package appliance

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// TestConfigDoc: the wizard's edits change their keys only; comments and other keys
// stay, and missing mappings are made.
func TestConfigDoc(t *testing.T) {
	src := "# site config\nlog:\n  level: debug # chatty\nresolver:\n  # where allowed names go\n  upstreams: []\n"
	tests := []struct {
		name  string
		path  []string
		value any
		want  []string
	}{
		{"replace a list", []string{"resolver", "upstreams"}, []map[string]string{{"address": "9.9.9.9:53"}}, []string{"# where allowed names go", "address: 9.9.9.9:53", "level: debug # chatty"}},
		{"make the mappings", []string{"backup", "local", "dir"}, "/mnt/b", []string{"backup:\n  local:\n    dir: /mnt/b", "# site config"}},
		{"a scalar", []string{"log", "level"}, "info", []string{"level: info # chatty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseConfigDoc([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.set(tt.value, tt.path...); err != nil {
				t.Fatal(err)
			}
			out, err := d.bytes()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("after set %v:\n%s\nlacks %q", tt.path, out, w)
				}
			}
		})
	}
	for _, bad := range []string{"- a list\n", "just text\n", "a: [\n"} {
		if _, err := parseConfigDoc([]byte(bad)); err == nil {
			t.Errorf("parseConfigDoc(%q) = nil error", bad)
		}
	}
}

func FuzzConfigDoc(f *testing.F) {
	f.Add([]byte("segments:\n  - name: a\n"))
	f.Add([]byte("resolver: 3\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseConfigDoc(data)
		if err != nil {
			return
		}
		var segs []map[string]any
		_ = d.get(&segs, "segments")
		_ = d.set([]string{"x"}, "resolver", "upstreams")
		_, _ = d.bytes()
	})
}

// TestWizard walks the wizard as the first admin would: a step with a problem shows it
// next to its field and writes nothing; a good step writes the file (still valid, its
// comments kept) and is audited; a skipped step writes nothing; finishing marks it done.
func TestWizard(t *testing.T) {
	dev, err := os.ReadFile("../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "patchgate.yaml")
	writeFile(t, path, dev)
	lists, _ := filepath.Abs("../configs/allowlists")
	if err := os.Symlink(lists, filepath.Join(dir, "allowlists")); err != nil {
		t.Fatal(err)
	}
	vendorRoot := filepath.Join(dir, "vendor-root.json") // tuf roots are not relative to the config file
	writeFile(t, vendorRoot, []byte(`{"signed":{"_type":"root"}}`))
	sys := newSystem(t, testConfig(t), Options{ConfigPath: path})
	runSystem(t, sys)
	waitReady(t, sys)
	admin, viewer := apiToken(t, sys, auth.Admin), apiToken(t, sys, auth.Viewer)
	base := "http://" + sys.AdminAddr()
	post := func(step string, form url.Values) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/wizard/"+step, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", admin)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, resp.Header.Get("Location"), b.String()
	}
	file := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if code, body := fetch(t, "GET", base+"/wizard", nil, "Authorization", admin); code != http.StatusOK || !strings.Contains(body, `id="start"`) {
		t.Fatalf("GET /wizard = %d %s", code, body)
	}
	if code, _ := fetch(t, "GET", base+"/wizard/segments", nil, "Authorization", viewer); code != http.StatusForbidden {
		t.Errorf("a viewer's GET /wizard/segments = %d, want 403", code)
	}
	if code, _ := fetch(t, "GET", base+"/wizard/nosuch", nil, "Authorization", admin); code != http.StatusNotFound {
		t.Errorf("GET /wizard/nosuch = %d, want 404", code)
	}
	if code, body := fetch(t, "GET", base+"/wizard/segments", nil, "Authorization", admin); code != http.StatusOK || !strings.Contains(body, `value="loopback"`) {
		t.Errorf("segments form = %d, lacks the current segment:\n%s", code, body)
	}

	steps := []struct {
		name     string
		step     string
		form     url.Values
		location string   // "" when the form comes back with problems
		problems []string // shown on the form
		inFile   []string // in the file afterwards
	}{
		{"a bad subnet is shown at its field", "segments", url.Values{"seg0.name": {"loopback"}, "seg0.clients": {"127.0.0.0/8"},
			"seg1.name": {"clinical"}, "seg1.clients": {"10.20.0.0/33"}}, "", []string{`<p class="bad problem" data-field="segments">`, "10.20.0.0/33"}, nil},
		{"good segments are written", "segments", url.Values{"seg0.name": {"loopback"}, "seg0.clients": {"127.0.0.0/8"},
			"seg1.name": {"clinical"}, "seg1.interface": {"eth1"}, "seg1.addresses": {"10.20.0.1/24"}, "seg1.clients": {"10.20.0.0/24"}},
			"/wizard/dns?saved=segments", nil, []string{"name: clinical", "10.20.0.0/24", "# No upstream on a dev box"}},
		{"a skipped step writes nothing", "dns", url.Values{"skip": {"1"}, "upstreams": {"9.9.9.9:53 udp"}}, "/wizard/sources", nil, []string{"upstreams: []"}},
		{"a bad protocol", "dns", url.Values{"upstreams": {"9.9.9.9:53 carrier-pigeon"}}, "", []string{"carrier-pigeon"}, []string{"upstreams: []"}},
		{"upstreams", "dns", url.Values{"upstreams": {"9.9.9.9:53 udp\n149.112.112.112:853 tls dns.quad9.net"}}, "/wizard/sources?saved=dns", nil, []string{"tls_server_name: dns.quad9.net"}},
		{"a url source without a digest", "sources", url.Values{"src.name": {"printer-fw"}, "src.url": {"https://vendor.example/fw-4.2.bin"}}, "",
			[]string{`data-field="sources"`, "needs a pinned sha256 or a checksums_url"}, nil},
		{"a repository without its root", "sources", url.Values{"tuf.name": {"vendor"}, "tuf.metadata_url": {"http://127.0.0.1:1/metadata"}}, "",
			[]string{"must name the pinned root.json file"}, nil},
		{"a root file that is not there", "sources", url.Values{"tuf.name": {"vendor"}, "tuf.metadata_url": {"http://127.0.0.1:1/metadata"}, "tuf.root": {"nosuch.json"}}, "",
			[]string{"nosuch.json"}, nil},
		{"a url source and a repository", "sources", url.Values{"src.name": {"printer-fw"}, "src.url": {"https://vendor.example/fw-4.2.bin"},
			"src.sha256": {strings.Repeat("ab", 32)}, "tuf.name": {"vendor"}, "tuf.metadata_url": {"http://127.0.0.1:1/metadata"}, "tuf.root": {vendorRoot}},
			"/wizard/window?saved=sources", nil, []string{"kind: url", "sha256: " + strings.Repeat("ab", 32), "root: " + vendorRoot, "targets_url: http://127.0.0.1:1/metadata"}},
		{"a source by its checksums file", "sources", url.Values{"src.name": {"tools"}, "src.checksums_url": {"https://vendor.example/SHA256SUMS"}},
			"/wizard/window?saved=sources", nil, []string{"checksums_url: https://vendor.example/SHA256SUMS", "name: printer-fw"}},
		{"a bad cron", "window", url.Values{"zone": {"UTC"}, "win0.name": {"nightly"}, "win0.cron": {"0 25 * * *"}, "win0.duration": {"6h"}}, "",
			[]string{`data-field="window"`, "5-field cron"}, nil},
		{"a window on a ring that is not there", "window", url.Values{"zone": {"UTC"}, "win0.name": {"nightly"}, "win0.cron": {"0 22 * * *"}, "win0.duration": {"6h"}, "win0.ring": {"nosuch"}}, "",
			[]string{"no ring named"}, nil},
		{"windows", "window", url.Values{"zone": {"America/New_York"}, "win0.name": {"nightly"}, "win0.cron": {"0 22 * * *"}, "win0.duration": {"6h"},
			"win1.name": {"weekend"}, "win1.cron": {"0 2 * * 6"}, "win1.duration": {"4h"}, "win1.ring": {"core"}},
			"/wizard/mfa?saved=window", nil, []string{"zone: America/New_York", "name: weekend", "cron: 0 2 * * 6"}},
		{"email without a relay", "notify", url.Values{"enabled": {"on"}, "emails": {"it@pharmacy.example"}}, "", []string{`data-field="notify"`}, []string{}},
		{"notifications", "notify", url.Values{"enabled": {"on"}, "host": {"127.0.0.1"}, "port": {"2525"}, "from": {"patchgate@pharmacy.example"},
			"emails": {"it@pharmacy.example"}}, "/wizard/finish?saved=notify", nil, []string{"email: it@pharmacy.example"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := file()
			code, loc, body := post(st.step, st.form)
			if st.location == "" {
				if code != http.StatusOK || loc != "" {
					t.Errorf("POST %s = %d %s, want the form again", st.step, code, loc)
				}
				if file() != before {
					t.Errorf("a form with problems changed the file")
				}
			} else if code != http.StatusSeeOther || loc != st.location {
				t.Errorf("POST %s = %d to %q, want 303 to %s:\n%s", st.step, code, loc, st.location, body)
			}
			for _, w := range st.problems {
				if !strings.Contains(body, w) {
					t.Errorf("form lacks %q:\n%s", w, body)
				}
			}
			for _, w := range st.inFile {
				if !strings.Contains(file(), w) {
					t.Errorf("config file lacks %q:\n%s", w, file())
				}
			}
			if _, err := config.Load(path); err != nil {
				t.Errorf("the written config does not load: %v", err)
			}
		})
	}
	// The window step previews the next openings, and added the new window to the store.
	if code, body := fetch(t, "GET", base+"/wizard/window", nil, "Authorization", admin); code != http.StatusOK ||
		strings.Count(body, `<ul class="muted preview" data-preview="window">`) != 2 || !strings.Contains(body, "opens ") {
		t.Errorf("window step = %d, lacks the previews:\n%s", code, body)
	}
	if ws, err := sys.rollout.Windows(context.Background()); err != nil || !slices.ContainsFunc(ws, func(w rollout.Window) bool { return w.Name == "weekend" && w.Zone == "America/New_York" }) {
		t.Errorf("store windows = %+v, %v; want weekend added", ws, err)
	}
	if got := panelData[map[string]any](t, sys, "wizard"); got["done"] != false {
		t.Errorf("wizard panel before finishing = %v", got)
	}
	if code, loc, body := post("finish", url.Values{}); code != http.StatusSeeOther || loc != "/wizard?finished=1" {
		t.Fatalf("finish = %d %q %s", code, loc, body)
	}
	if got := panelData[map[string]any](t, sys, "wizard"); got["done"] != true {
		t.Errorf("wizard panel after finishing = %v", got)
	}
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "config.wizard"})
	if err != nil || len(recs) != 7 { // segments, dns, sources twice, window, notify, finish
		t.Errorf("config.wizard records = %d, %v; want 7", len(recs), err)
	}
}

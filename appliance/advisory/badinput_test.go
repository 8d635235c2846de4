package advisory_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// TestBadFeedsRefusedPreviousKept: each bad delivery is refused with a health problem
// naming the feed and the reason, and the data fetched before stays.
func TestBadFeedsRefusedPreviousKept(t *testing.T) {
	other := newProvider(t)
	tests := []struct {
		name, feed, path string
		body             func(e *env) []byte
		code, reason     string
	}{
		{"unreachable", "kev", "/kev.json", func(*env) []byte { return nil }, "advisory-feed-unavailable", advisory.ReasonNetwork},
		{"malformed KEV", "kev", "/kev.json", func(*env) []byte { return []byte(`{"vulnerabilities":[{"cveID":"CVE-1"}]}`) }, "advisory-feed-refused", advisory.ReasonMalformed},
		{"enormous KEV", "kev", "/kev.json", func(*env) []byte { return bytes.Repeat([]byte(" "), 2<<20) }, "advisory-feed-refused", advisory.ReasonTooLarge},
		{"CSAF unsigned", "zebra", "/csaf/white/2026/zebra-2026-001.json.asc", func(*env) []byte { return nil }, "advisory-feed-unavailable", advisory.ReasonNetwork},
		{"CSAF signed by another key", "zebra", "/csaf/white/2026/zebra-2026-001.json.asc",
			func(*env) []byte { return other.sign(t, []byte(csafDoc)) }, "advisory-feed-refused", advisory.ReasonSignature},
		{"CSAF changed after signing", "zebra", "/csaf/white/2026/zebra-2026-001.json",
			func(*env) []byte { return []byte(strings.Replace(csafDoc, "HIGH", "LOW", 1)) }, "advisory-feed-refused", advisory.ReasonDigest},
		{"CSAF provider metadata malformed", "zebra", "/.well-known/csaf/provider-metadata.json",
			func(*env) []byte { return []byte(`{"distributions": []}`) }, "advisory-feed-refused", advisory.ReasonMalformed},
		{"CSAF index lists too many", "zebra", "/csaf/white/index.txt",
			func(*env) []byte {
				var b bytes.Buffer
				for i := range 1001 {
					fmt.Fprintf(&b, "2026/doc-%d.json\n", i)
				}
				return b.Bytes()
			}, "advisory-feed-refused", advisory.ReasonTooLarge},
		{"OSV answer malformed", "osv", "", func(e *env) []byte {
			e.srv.mu.Lock()
			e.srv.osv["openssl@3.0.11-1~deb12u2"] = `{"vulns": [{"id": "X", "affected": [{"package": {}}]}]}`
			e.srv.mu.Unlock()
			return nil
		}, "advisory-feed-refused", advisory.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(s *advisory.Section, _ provider) { s.MaxDocuments = 1000 })
			e.fetchAll(t)
			before, err := e.svc.Sources(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			body := tt.body(e)
			if tt.path != "" {
				e.srv.set(tt.path, body)
			}
			st, err := e.svc.Fetch(context.Background(), tt.feed)
			if err != nil {
				t.Fatal(err)
			}
			if st.Result != "refused" || st.Reason != tt.reason {
				t.Fatalf("Fetch(%s) = %s (%s: %s), want refused (%s)", tt.feed, st.Result, st.Reason, st.Error, tt.reason)
			}
			ps := e.svc.Health()
			if len(ps) != 1 || ps[0].Code != tt.code || !strings.Contains(ps[0].Text, "feed "+tt.feed) || !strings.Contains(ps[0].Text, "previous data is kept") {
				t.Errorf("Health() = %+v, want one %s naming feed %s", ps, tt.code, tt.feed)
			}
			if tt.code == "advisory-feed-refused" && ps[0].Severity != health.Error {
				t.Errorf("severity %v, want error", ps[0].Severity)
			}
			after, err := e.svc.Sources(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i := range before {
				if before[i] != after[i] {
					t.Errorf("stored %s changed: %+v → %+v", before[i].Source, before[i], after[i])
				}
			}
		})
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, body := range files {
		f, err := w.Create(name)
		if err == nil {
			_, err = f.Write(body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestImport: the files the feeds deliver, imported offline; a bare or badly signed
// CSAF document is refused.
func TestImport(t *testing.T) {
	p := newProvider(t)
	other := newProvider(t)
	doc := []byte(csafDoc)
	tests := []struct {
		name, file string
		data       []byte
		advisories int
		kev        int
		err        string
	}{
		{"KEV catalog", "known_exploited_vulnerabilities.json", []byte(kevJSON), 0, 3, ""},
		{"OSV record", "DSA-5999-1.json", []byte(osvOpenSSL), 1, 0, ""},
		{"OSV list", "osv.json", []byte("[" + osvOpenSSL + "]"), 1, 0, ""},
		{"zip of OSV records and a signed CSAF advisory", "all.zip", zipOf(t, map[string][]byte{
			"DSA-5999-1.json": []byte(osvOpenSSL), "zebra.json": doc, "zebra.json.asc": p.sign(t, doc),
			"zebra.json.sha256": sha256File(doc, "zebra.json")}), 3, 0, ""},
		{"bare CSAF advisory", "zebra.json", doc, 0, 0, "unsigned"},
		{"CSAF signed by another key", "csaf.zip", zipOf(t, map[string][]byte{"zebra.json": doc, "zebra.json.asc": other.sign(t, doc)}), 0, 0, "not by the pinned key"},
		{"CSAF with a wrong sha256", "csaf.zip", zipOf(t, map[string][]byte{"zebra.json": doc, "zebra.json.asc": p.sign(t, doc),
			"zebra.json.sha256": sha256File([]byte("x"), "zebra.json")}), 0, 0, "does not match"},
		{"not an advisory", "notes.json", []byte(`{"hello": 1}`), 0, 0, "not a KEV catalog, CSAF advisory or OSV record"},
		{"not JSON", "x.json", []byte("<html>"), 0, 0, "not a KEV catalog"},
		{"too large", "big.json", bytes.Repeat([]byte(" "), 1<<20+1), 0, 0, "more than max_size"},
		{"broken zip", "x.zip", []byte("PK\x03\x04garbage"), 0, 0, "not a zip archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(s *advisory.Section, _ provider) {
				s.Feeds = []advisory.Feed{{Name: "zebra", Kind: advisory.KindCSAF, URL: "https://vendor.example/p.json", Key: p.public(t)}}
			})
			res, err := e.svc.Import(context.Background(), tt.file, tt.data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Import = %+v, %v; want an error containing %q", res, err, tt.err)
				}
				srcs, _ := e.svc.Sources(context.Background())
				if len(srcs) != 0 {
					t.Errorf("a refused import stored %+v", srcs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Advisories != tt.advisories || res.KEV != tt.kev || res.Source != "import:"+tt.file {
				t.Errorf("Import = %+v, want %d advisories, %d KEV entries as import:%s", res, tt.advisories, tt.kev, tt.file)
			}
		})
	}
}

func TestSectionValidate(t *testing.T) {
	tests := []struct {
		name string
		sec  advisory.Section
		want []string
	}{
		{"good", advisory.Section{Feeds: []advisory.Feed{{Name: "kev", Kind: "kev", URL: "https://www.cisa.gov/kev.json"},
			{Name: "v", Kind: "csaf", URL: "https://v.example/.well-known/csaf/provider-metadata.json", KeyFile: "v.asc"}}}, nil},
		{"bad", advisory.Section{Interval: conf.Duration(1), Feeds: []advisory.Feed{
			{Name: "A", Kind: "rss", URL: "ftp://x"}, {Name: "v", Kind: "csaf", URL: "https://v.example/p.json"},
			{Name: "v", Kind: "kev", URL: "https://v.example/k.json", Key: "k"}}},
			[]string{"advisory.interval", "advisory.feeds[0].name", "advisory.feeds[0].url", "advisory.feeds[0].kind",
				"advisory.feeds[1].key: kind csaf needs", "advisory.feeds[2].name: feed \"v\" listed twice", "advisory.feeds[2].key: does not apply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps conf.Problems
			tt.sec.Validate("advisory", &ps)
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			all := strings.Join(got, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", all, w)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("problems = %q, want %d", got, len(tt.want))
			}
		})
	}
}

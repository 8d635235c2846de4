package advisory_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/advisory"
)

// TestROLIEIncremental: a CSAF provider distributing through a ROLIE feed (no
// directory). The feed is fetched with a conditional request (ETag, or
// Last-Modified), its validators kept with the stored delivery: unchanged, it is
// answered 304 and no document is fetched; changed, only the entries whose "updated"
// changed (or new ones) are fetched, the others' advisories kept and the unlisted
// ones dropped; a malformed feed is refused and the previous data kept.
func TestROLIEIncremental(t *testing.T) {
	for _, mode := range []string{"etag", "modified"} {
		t.Run(mode, func(t *testing.T) { testROLIE(t, mode) })
	}
}

func testROLIE(t *testing.T, mode string) {
	const feed, doc1, doc2 = "/csaf/rolie/white.json", "/csaf/rolie/2026/zebra-2026-001.json", "/csaf/rolie/2026/zebra-2026-002.json"
	e := newEnv(t, func(s *advisory.Section, _ provider) { s.Feeds = s.Feeds[1:2] })
	e.srv.set("/.well-known/csaf/provider-metadata.json", []byte(`{"canonical_url": "`+e.srv.URL+`/.well-known/csaf/provider-metadata.json",
		"publisher": {"name": "Zebra"}, "distributions": [{"rolie": {"feeds": [{"tlp_label": "WHITE", "url": "`+e.srv.URL+feed+`"}]}}]}`))
	put := func(path string, body []byte) { e.putSigned(t, path, body) }
	put(doc1, []byte(csafDoc))
	put(doc2, csafDoc2("1"))
	e.srv.mu.Lock()
	e.srv.cond[feed] = mode
	e.srv.mu.Unlock()
	// entry is a ROLIE entry: the document relative to the feed, absolute by self link.
	entry := func(path, updated string) string {
		return fmt.Sprintf(`{"id": %q, "updated": %q, "link": [{"rel": "self", "href": "%s"}], "content": {"type": "application/json", "src": "%s"}}`,
			path, updated, e.srv.URL+path, strings.TrimPrefix(path, "/csaf/rolie/"))
	}
	setFeed := func(modified time.Time, entries ...string) {
		e.srv.set(feed, []byte(`{"feed": {"id": "zebra-white", "title": "Zebra CSAF", "entry": [`+strings.Join(entries, ",")+`]}}`))
		e.srv.mu.Lock()
		e.srv.modified[feed] = modified
		e.srv.mu.Unlock()
	}
	counts := func() (feedGets, notModified, g1, g2 int) {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		feedGets, notModified, g1, g2 = e.srv.gets[feed], e.srv.notModified, e.srv.gets[doc1], e.srv.gets[doc2]
		e.srv.gets[feed], e.srv.notModified, e.srv.gets[doc1], e.srv.gets[doc2] = 0, 0, 0, 0
		return
	}
	m1, m2, m3 := t0.Add(-3*time.Hour), t0.Add(-2*time.Hour), t0.Add(-time.Hour)
	steps := []struct {
		name                  string
		set                   func()
		result                string
		feedGets, notModified int
		get1, get2, documents int
		findings              string
	}{
		{"first run: the feed and every document", func() {
			setFeed(m1, entry(doc1, "2026-12-03T10:00:00Z"), entry(doc2, "2026-12-04T10:00:00Z"))
		}, "ok", 1, 0, 1, 1, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 1"},
		{"unchanged: 304, nothing fetched, all kept", func() {}, "ok", 1, 1, 0, 0, 3,
			"CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 1"},
		{"one entry updated: only it fetched", func() {
			put(doc2, csafDoc2("2"))
			setFeed(m2, entry(doc1, "2026-12-03T10:00:00Z"), entry(doc2, "2026-12-05T09:00:00+01:00"))
		}, "ok", 1, 0, 0, 1, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 2"},
		{"unchanged again: 304", func() {}, "ok", 1, 1, 0, 0, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 2"},
		{"malformed updated: refused, previous kept", func() {
			setFeed(m3, entry(doc1, "yesterday"))
		}, "refused", 1, 0, 0, 0, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 2"},
		{"one entry no longer listed: dropped", func() {
			setFeed(m3.Add(time.Minute), entry(doc2, "2026-12-05T08:00:00Z"))
		}, "ok", 1, 0, 0, 0, 1, "CVE-2026-1010 rev 2"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.set()
			got, err := e.svc.Fetch(context.Background(), "zebra")
			if err != nil {
				t.Fatal(err)
			}
			fg, nm, g1, g2 := counts()
			if got.Result != st.result || fg != st.feedGets || nm != st.notModified || g1 != st.get1 || g2 != st.get2 || got.Documents != st.documents {
				t.Errorf("fetch: %s (%s), feed GETs %d (304: %d), doc1 %d, doc2 %d, documents %d; want %s, %d (%d), %d, %d, %d",
					got.Result, got.Error, fg, nm, g1, g2, got.Documents, st.result, st.feedGets, st.notModified, st.get1, st.get2, st.documents)
			}
			if f := e.findingTitles(t, "printer-1"); f != st.findings {
				t.Errorf("printer-1 findings %q, want %q", f, st.findings)
			}
		})
	}
}

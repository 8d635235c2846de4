package advisory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/advisory"
)

// csafDoc2 is a second advisory of the provider: CVE-2026-1010 on the ZT410 at
// V75.20.01Z; version v of it has title "rev v".
func csafDoc2(v string) []byte {
	return []byte(`{"document": {"category": "csaf_security_advisory", "csaf_version": "2.0", "title": "rev ` + v + `",
  "tracking": {"id": "ZEBRA-2026-002", "initial_release_date": "2026-12-04T00:00:00Z", "current_release_date": "2026-12-04T00:00:00Z", "status": "final", "version": "` + v + `"}},
 "product_tree": {"branches": [{"category": "vendor", "name": "Zebra Technologies", "branches": [
   {"category": "product_name", "name": "ZT410", "branches": [
    {"category": "product_version", "name": "V75.20.01Z", "product": {"product_id": "P", "name": "Zebra ZT410 V75.20.01Z"}}]}]}]},
 "vulnerabilities": [{"cve": "CVE-2026-1010", "title": "rev ` + v + `", "product_status": {"known_affected": ["P"]}}]}`)
}

// TestCSAFChanges: with a changes.csv the provider's documents are fetched only when
// changed since the last good fetch, the others' advisories kept; a document no longer
// listed is dropped; past max_documents the newest are taken and the rest left for the
// next run; without changes.csv the whole index is read; a malformed one is refused.
func TestCSAFChanges(t *testing.T) {
	const dir = "/csaf/white/"
	const doc1, doc2 = dir + "2026/zebra-2026-001.json", dir + "2026/zebra-2026-002.json"
	line := func(path, at string) string { return `"` + strings.TrimPrefix(path, dir) + `","` + at + `"` + "\n" }
	e := newEnv(t, func(s *advisory.Section, _ provider) { s.Feeds = s.Feeds[1:2]; s.MaxDocuments = 1 })
	put := func(path string, body []byte) { e.putSigned(t, path, body) }
	put(doc2, csafDoc2("1"))
	e.srv.set(dir+"index.txt", []byte("2026/zebra-2026-001.json\n2026/zebra-2026-002.json\n"))
	fetch := func(t *testing.T) advisory.FeedStatus {
		t.Helper()
		st, err := e.svc.Fetch(context.Background(), "zebra")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	gets := func() (int, int) {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		a, b := e.srv.gets[doc1], e.srv.gets[doc2]
		e.srv.gets[doc1], e.srv.gets[doc2] = 0, 0
		return a, b
	}
	steps := []struct {
		name           string
		changes        string // "" removes changes.csv
		result         string
		get1, get2     int
		pending        int
		documents      int
		findingsTitles string
	}{
		{"first run takes the newest, leaves one for the next", line(doc2, "2026-12-04T10:00:00Z") + line(doc1, "2026-12-03T10:00:00Z"),
			"ok", 0, 1, 1, 1, "CVE-2026-1010 rev 1"},
		{"next run takes the one left", line(doc2, "2026-12-04T10:00:00Z") + line(doc1, "2026-12-03T10:00:00Z"),
			"ok", 1, 0, 0, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 1"},
		{"nothing changed: nothing fetched, all kept", line(doc2, "2026-12-04T10:00:00Z") + line(doc1, "2026-12-03T10:00:00Z"),
			"ok", 0, 0, 0, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 1"},
		{"one changed: only it fetched", line(doc2, "2026-12-05T09:00:00+01:00") + line(doc1, "2026-12-03T10:00:00Z"),
			"ok", 0, 1, 0, 3, "CVE-2026-1001 Remote code execution,CVE-2026-1010 rev 2"},
		{"one no longer listed: dropped", line(doc2, "2026-12-05T08:00:00Z"),
			"ok", 0, 0, 0, 1, "CVE-2026-1010 rev 2"},
		{"malformed changes.csv: refused, previous kept", `"2026/a.json","yesterday"` + "\n",
			"refused", 0, 0, 0, 1, "CVE-2026-1010 rev 2"},
		{"no changes.csv: the whole index, beyond max_documents: refused", "",
			"refused", 0, 0, 0, 1, "CVE-2026-1010 rev 2"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.changes == "" {
				e.srv.set(dir+"changes.csv", nil)
			} else {
				e.srv.set(dir+"changes.csv", []byte(st.changes))
			}
			if strings.Contains(st.name, "one changed") {
				put(doc2, csafDoc2("2"))
			}
			got := fetch(t)
			g1, g2 := gets()
			if got.Result != st.result || g1 != st.get1 || g2 != st.get2 || got.Pending != st.pending || got.Documents != st.documents {
				t.Errorf("fetch: %s (%s), fetched doc1 %d doc2 %d times, pending %d, documents %d; want %s, %d, %d, %d, %d",
					got.Result, got.Error, g1, g2, got.Pending, got.Documents, st.result, st.get1, st.get2, st.pending, st.documents)
			}
			if f := e.findingTitles(t, "printer-1"); f != st.findingsTitles {
				t.Errorf("printer-1 findings %q, want %q", f, st.findingsTitles)
			}
		})
	}

	// Without changes.csv and within max_documents, the index is read whole.
	e2 := newEnv(t, func(s *advisory.Section, _ provider) { s.Feeds = s.Feeds[1:2] })
	body := csafDoc2("3")
	e2.putSigned(t, doc2, body)
	e2.srv.set(dir+"index.txt", []byte("2026/zebra-2026-001.json\n2026/zebra-2026-002.json\n"))
	for range 2 {
		st, err := e2.svc.Fetch(context.Background(), "zebra")
		if err != nil || st.Result != "ok" || st.Documents != 3 || st.Fetched != 2 {
			t.Fatalf("index fetch = %+v, %v; want ok, 2 documents fetched, 3 advisories", st, err)
		}
	}
	if n := e2.srv.gets[doc1]; n != 2 {
		t.Errorf("without changes.csv doc1 fetched %d times in 2 runs, want 2", n)
	}
}

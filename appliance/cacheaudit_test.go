package appliance

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/cache"
)

// A stored object damaged on disk is found by the scrubber, dropped, and recorded in
// the audit trail (issue 7: cache integrity failures are audit records).
func TestCacheIntegrityFailuresAreAudited(t *testing.T) {
	sys, _, _ := startSystem(t)
	waitReady(t, sys)
	var resp *http.Response
	// The mirror's first refresh runs as Run starts.
	waitUntil(t, "the demo target to be served", 20*time.Second, func() bool {
		resp = get(t, "http://"+sys.DistributionAddr()+"/repos/demo/targets/hello.txt")
		return resp.StatusCode == http.StatusOK
	})
	key := strings.Trim(resp.Header.Get("Etag"), `"`)
	obj := filepath.Join(sys.cfg.State.Path("cache"), "objects", key[:2], key)
	if sys.cfg.Cache.Dir != "" {
		obj = filepath.Join(sys.cfg.Cache.Dir, "objects", key[:2], key)
	}
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatalf("stored object: %v", err)
	}
	data[0] ^= 0xff
	if err := os.WriteFile(obj, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sys.updates.cache.Scrub(context.Background()); err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "cache.integrity.scrub_mismatch"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Object != "target/demo/hello.txt" || recs[0].Actor != "system:cache" {
		t.Fatalf("audit records for the damaged object = %+v, want one scrub_mismatch for target/demo/hello.txt", recs)
	}
}

// A download the cache gave up because the upstream did not deliver is recorded, by the
// System's wiring, with its reason (issue 14: hostile upstreams are audited).
func TestCacheUpstreamFailureIsAudited(t *testing.T) {
	sys := newSystem(t, testConfig(t), Options{Build: Build{Version: "test"}})
	cacheAudit{sys.audit, sys.log}.Integrity(cache.IntegrityEvent{Kind: cache.IntegrityUpstreamFailed,
		Repo: "demo", Path: "fw.bin", Reason: "too_slow", Detail: "2 attempts in a row without new verified progress"})
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "cache.integrity.upstream_failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Object != "target/demo/fw.bin" || recs[0].Actor != "system:cache" || recs[0].Details["reason"] != "too_slow" {
		t.Fatalf("audit records = %+v, want one upstream_failed for target/demo/fw.bin with reason too_slow", recs)
	}
}

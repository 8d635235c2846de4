package cache_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// The attacks TUF exists for. Each test sets up a repository whose genuine
// state the appliance has verified, lets an attacker change what the
// upstream serves, and asserts that an endpoint asking the appliance never
// receives the attacker's bytes: it gets the last verified bytes, or an
// error status.

var (
	goodV1 = []byte("app version 1: genuine")
	goodV2 = []byte("app version 2: genuine")
	evil   = []byte("app version 2: MALWARE") // same length as the genuine one
)

// attackEnv publishes app.bin v1, lets the appliance verify it, then
// publishes app.bin v2 (genuine); the attack happens before the appliance
// refreshes again.
func attackEnv(t *testing.T, opts ...tuftest.Option) (*tuftest.Repo, *env) {
	t.Helper()
	repo := tuftest.New(t, opts...)
	repo.AddTarget("app.bin", goodV1)
	repo.Publish()
	e := newEnv(t, repo)
	e.refresh(t)
	repo.AddTarget("app.bin", goodV2)
	repo.Publish()
	return repo, e
}

// endpointGets asks the appliance for app.bin (plain name and every
// hash-prefixed name of the evil bytes) and fails the test if evil bytes
// ever come back. It returns the body of the plain request when 200.
func endpointGets(t *testing.T, e *env) (int, []byte) {
	t.Helper()
	for _, p := range []string{
		"/repos/demo/targets/" + sha256Hex(evil) + ".app.bin",
		"/repos/demo/targets/" + sha512Hex(evil) + ".app.bin",
	} {
		resp, body := e.get(t, p)
		if bytes.Contains(body, evil) || resp.StatusCode == 200 {
			t.Fatalf("GET %s: status %d: the endpoint received the attacker's bytes", p, resp.StatusCode)
		}
	}
	resp, body := e.get(t, "/repos/demo/targets/app.bin")
	if bytes.Contains(body, evil) {
		t.Fatalf("GET app.bin: the endpoint received the attacker's bytes")
	}
	if resp.StatusCode == 200 && !bytes.Equal(body, goodV1) && !bytes.Equal(body, goodV2) {
		t.Fatalf("GET app.bin: 200 with bytes that are neither genuine version")
	}
	return resp.StatusCode, body
}

// refreshMustFail refreshes and fails the test if the attack was accepted.
func refreshMustFail(t *testing.T, e *env) {
	t.Helper()
	if err := e.mirror.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh accepted the attacker's metadata")
	} else {
		t.Logf("Refresh refused: %v", err)
	}
}

// wantStillV1 asserts the appliance still serves the last verified state.
func wantStillV1(t *testing.T, e *env) {
	t.Helper()
	code, body := endpointGets(t, e)
	if code != 200 || !bytes.Equal(body, goodV1) {
		t.Errorf("GET app.bin: status %d body %q, want 200 with the last verified version", code, body)
	}
}

// wantEvilSignedRefused publishes the attacker's app.bin with targets signed by keys
// (none: unsigned) and wants the refresh refused and the last verified version served.
func wantEvilSignedRefused(t *testing.T, repo *tuftest.Repo, e *env, keys ...ed25519.PrivateKey) {
	t.Helper()
	repo.SignWith("targets", keys...)
	repo.AddTarget("app.bin", evil)
	repo.Publish()
	refreshMustFail(t, e)
	wantStillV1(t, e)
}

// forgeTargets returns targets metadata JSON that lists app.bin with the
// evil bytes' length and hashes, keeping the original (now invalid)
// signatures, with the given version.
func forgeTargets(t *testing.T, orig []byte, version int64) []byte {
	t.Helper()
	var md map[string]any
	if err := json.Unmarshal(orig, &md); err != nil {
		t.Fatal(err)
	}
	signed := md["signed"].(map[string]any)
	signed["version"] = version
	signed["targets"].(map[string]any)["app.bin"] = map[string]any{
		"length": len(evil),
		"hashes": map[string]any{"sha256": sha256Hex(evil), "sha512": sha512Hex(evil)},
	}
	out, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serveEvilTarget makes the upstream answer the evil bytes under the names
// a client would derive from forged metadata.
func serveEvilTarget(repo *tuftest.Repo) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(evil) })
	repo.Handle("/targets/"+sha256Hex(evil)+".app.bin", h)
	repo.Handle("/targets/"+sha512Hex(evil)+".app.bin", h)
	repo.Handle("/targets/app.bin", h)
}

func TestAttackTamperedTarget(t *testing.T) {
	repo, e := attackEnv(t)
	e.refresh(t) // genuine metadata for v2
	repo.ServeTarget("app.bin", tuftest.Bytes(evil))
	code, body := endpointGets(t, e)
	if code != http.StatusBadGateway {
		t.Errorf("status %d (%s), want 502", code, body)
	}
	if n := metricValue(t, e.reg, "patchgate_cache_verification_failures_total"); n < 1 {
		t.Errorf("verification failures metric = %v, want >= 1", n)
	}
	if st := e.cache.Status(); st.Objects != 0 {
		t.Errorf("store holds %d objects after a failed verification, want 0", st.Objects)
	}
	evs := e.integrityEvents()
	if len(evs) == 0 || evs[0].Kind != cache.IntegrityUpstreamRejected || evs[0].Repo != "demo" || evs[0].Path != "app.bin" {
		t.Errorf("integrity events = %+v, want an upstream_rejected for demo/app.bin", evs)
	}
}

func TestAttackWrongLengthShort(t *testing.T) {
	repo, e := attackEnv(t)
	e.refresh(t)
	repo.ServeTarget("app.bin", tuftest.Bytes(goodV2[:10]))
	code, body := endpointGets(t, e)
	if code != http.StatusBadGateway || bytes.Contains(body, goodV2[:10]) {
		t.Errorf("status %d (%q), want 502 and none of the short bytes", code, body)
	}
	if st := e.cache.Status(); st.Objects != 0 {
		t.Errorf("store holds %d objects, want 0", st.Objects)
	}
}

func TestAttackWrongLengthEndless(t *testing.T) {
	repo, e := attackEnv(t)
	e.refresh(t)
	var mu sync.Mutex
	sent := 0
	endless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat(goodV2, 1000)
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			mu.Lock()
			sent += n
			mu.Unlock()
			if err != nil || sent > 1<<30 {
				return
			}
		}
	})
	for _, p := range repo.TargetPaths("targets", "app.bin") {
		repo.Handle(p, endless)
	}
	code, body := endpointGets(t, e)
	if code != http.StatusBadGateway || len(body) > 1000 {
		t.Errorf("status %d with %d bytes, want a short 502", code, len(body))
	}
	// The cache stopped reading right after the verified length.
	if got := metricValue(t, e.reg, "patchgate_cache_upstream_bytes_total"); got > 1<<20 {
		t.Errorf("read %v upstream bytes of an endless body, want it stopped near %d", got, len(goodV2))
	}
}

func TestAttackRollbackTimestamp(t *testing.T) {
	repo, e := attackEnv(t)
	e.refresh(t) // verified: timestamp v3
	verifiedTS := repo.Metadata("timestamp.json")
	repo.AddTarget("app.bin", evil) // a later release the attacker will replay an old view against
	repo.Publish()
	repo.ServeMetadata("timestamp.json", repo.Published("timestamp", 2))
	refreshMustFail(t, e)
	resp, body := e.get(t, "/repos/demo/metadata/timestamp.json")
	if resp.StatusCode != 200 || !bytes.Equal(body, verifiedTS) {
		t.Errorf("served timestamp is not the newest verified one")
	}
}

func TestAttackRollbackSnapshot(t *testing.T) {
	repo, e := attackEnv(t)
	// The new snapshot (v3) is replaced by the old one (v2).
	repo.ServeMetadata("3.snapshot.json", repo.Published("snapshot", 2))
	refreshMustFail(t, e)
	wantStillV1(t, e)
}

func TestAttackRollbackTargets(t *testing.T) {
	repo, e := attackEnv(t)
	e.refresh(t) // verified targets v3 (app.bin v2)
	repo.AddTarget("other.bin", []byte("x"))
	repo.Publish() // targets v4 expected next
	// The attacker serves targets v2 (app.bin v1, vulnerable) as v4.
	repo.ServeMetadata("4.targets.json", repo.Published("targets", 2))
	refreshMustFail(t, e)
	resp, body := e.get(t, "/repos/demo/targets/app.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, goodV2) {
		t.Errorf("status %d body %q, want the newest verified version", resp.StatusCode, body)
	}
}

func TestAttackMixAndMatch(t *testing.T) {
	repo, e := attackEnv(t)
	repo.Delegate("targets", "vendor", []string{"vendor/*"}, false)
	repo.AddTargetContent("vendor", "vendor/tool.bin", tuftest.Bytes("tool v1"), nil)
	repo.Publish()
	e.refresh(t)
	repo.AddTargetContent("vendor", "vendor/tool.bin", tuftest.Bytes("tool v2"), nil)
	repo.Publish()
	// Current snapshot and targets, but the delegated role of an older
	// snapshot under the name the new snapshot lists. The role fails to
	// verify; the rest of the repository stays in service, and nothing the
	// role vouches for is served until it verifies again.
	repo.ServeMetadata("2.vendor.json", repo.Published("vendor", 1))
	e.refresh(t)
	resp, body := e.get(t, "/repos/demo/targets/vendor/tool.bin")
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("tool v1")) {
		t.Errorf("status %d body %q, want 502: the old role must not be mixed with the new snapshot", resp.StatusCode, body)
	}
	if h := e.mirror.Health(); len(h) != 1 || h[0].Code != "tuf-role-unavailable" {
		t.Errorf("mirror health = %+v, want tuf-role-unavailable", h)
	}
	if code, body := endpointGets(t, e); code != 200 || !bytes.Equal(body, goodV2) {
		t.Errorf("app.bin: status %d body %q, want the genuine v2", code, body)
	}
}

func TestAttackFreeze(t *testing.T) {
	clk := clock.NewFake(time.Now()) // for the mirror's expiry checks
	clk.SetAutoAdvance(true)         // retries need no driving
	repo := tuftest.New(t)
	repo.AddTarget("app.bin", goodV1)
	repo.SetExpires("timestamp", time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	repo.Publish()
	e := newEnv(t, repo, withMirrorClock(clk))
	e.refresh(t)
	wantStillV1(t, e) // cached now
	// The attacker freezes the upstream: it keeps serving this timestamp,
	// which expires.
	clk.Set(time.Now().Add(2 * time.Hour))
	refreshMustFail(t, e)
	code, body := endpointGets(t, e)
	if code != http.StatusServiceUnavailable || bytes.Contains(body, goodV1) {
		t.Errorf("status %d (%q), want 503 and no bytes vouched for by expired metadata", code, body)
	}
	if h := e.mirror.Health(); len(h) == 0 || h[0].Code != "tuf-metadata-expired" {
		t.Errorf("mirror health = %+v, want tuf-metadata-expired", h)
	}
}

func TestAttackExpiredFromTheStart(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("app.bin", goodV1)
	repo.SetExpires("timestamp", time.Now().Add(-time.Hour).UTC().Truncate(time.Second))
	repo.Publish()
	e := newEnv(t, repo)
	refreshMustFail(t, e)
	if code, _ := endpointGets(t, e); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
}

func TestAttackBadSignature(t *testing.T) {
	repo, e := attackEnv(t)
	repo.ServeMetadata("3.targets.json", forgeTargets(t, repo.Metadata("3.targets.json"), 3))
	serveEvilTarget(repo)
	refreshMustFail(t, e)
	wantStillV1(t, e)
}

func TestAttackMissingSignature(t *testing.T) {
	repo, e := attackEnv(t)
	wantEvilSignedRefused(t, repo, e) // no signatures at all
}

func TestAttackSignedByUntrustedKey(t *testing.T) {
	repo, e := attackEnv(t)
	wantEvilSignedRefused(t, repo, e, tuftest.NewKey())
}

func TestAttackThresholdNotMet(t *testing.T) {
	repo, e := attackEnv(t, tuftest.WithThreshold("targets", 2))
	wantEvilSignedRefused(t, repo, e, repo.Keys("targets")[0]) // 1 of 2
}

func TestAttackKeyRotationHonoured(t *testing.T) {
	repo, e := attackEnv(t)
	oldTargets := repo.Keys("targets")[0]
	repo.RotateKeys("targets") // root v2 names a new targets key
	repo.RotateKeys("root")    // root v3 with a new root key
	e.refresh(t)
	code, body := endpointGets(t, e)
	if code != 200 || !bytes.Equal(body, goodV2) {
		t.Fatalf("after rotation: status %d body %q, want v2", code, body)
	}
	for _, v := range []int{2, 3} {
		if resp, _ := e.get(t, "/repos/demo/metadata/"+strconv.Itoa(v)+".root.json"); resp.StatusCode != 200 {
			t.Errorf("%d.root.json: status %d", v, resp.StatusCode)
		}
	}
	// The revoked key signs a malicious release: refused.
	repo.SignWith("targets", oldTargets)
	repo.AddTarget("app.bin", evil)
	repo.Publish()
	refreshMustFail(t, e)
	if code, body := endpointGets(t, e); code != 200 || !bytes.Equal(body, goodV2) {
		t.Errorf("status %d body %q, want the last verified v2", code, body)
	}
}

func TestAttackCompromisedMirror(t *testing.T) {
	genuine := tuftest.New(t)
	genuine.AddTarget("app.bin", goodV1)
	genuine.Publish()
	// The upstream the appliance talks to is a mirror the attacker
	// controls: a complete, self-consistent repository under its own keys.
	attacker := tuftest.New(t)
	attacker.AddTarget("app.bin", evil)
	attacker.Publish()
	e := &env{repo: attacker, tufDir: t.TempDir(), dir: t.TempDir()}
	e.cfg.Dir = e.dir
	e.cfg.RetryBackoff = time.Millisecond
	e.startPinned(t, genuine.Root())
	refreshMustFail(t, e)
	if code, _ := endpointGets(t, e); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
	// The attacker's root is never served as ours either.
	if resp, body := e.get(t, "/repos/demo/metadata/root.json"); resp.StatusCode == 200 && bytes.Equal(body, attacker.Root()) {
		t.Errorf("served the attacker's root")
	}
}

var _ = hex.EncodeToString

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
)

// rolloutServer is the rollout admin API on a real engine and store behind HTTPS; its
// actor function maps three API tokens to three people (the auth layer's job in the
// appliance).
func rolloutServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	e, err := rollout.New(ctx, rollout.Config{
		SeedRings:   []rollout.Ring{{Name: "pilot", Order: 0}, {Name: "core", Order: 1}},
		SeedWindows: []rollout.Window{{Name: "nightly", Cron: "0 22 * * *", Duration: rollout.Duration(6 * time.Hour), Zone: "UTC"}},
	}, rollout.Options{DB: db, Clock: clock.NewFake(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	people := map[string]string{"Bearer t-rita": "rita", "Bearer t-anna": "anna", "Bearer t-dora": "dora"}
	mux := http.NewServeMux()
	rollout.NewAPI(e, func(r *http.Request) (string, error) {
		if p, ok := people[r.Header.Get("Authorization")]; ok {
			return p, nil
		}
		return "", errors.New("not authenticated")
	}).Register(mux)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(srv.Certificate().Raw)
	return srv, hex.EncodeToString(sum[:])
}

func TestRolloutCLI(t *testing.T) {
	srv, fp := rolloutServer(t)
	as := func(token string, args ...string) (string, string, int) {
		t.Helper()
		return run(t, append([]string{"rollout", "--server", srv.URL, "--fingerprint", fp, "--token", token}, args...)...)
	}
	steps := []struct {
		name     string
		token    string
		args     []string
		wantCode int
		want     string
	}{
		{"release", "t-rita", []string{"release", "create", "--name", "fw 2.0", "--repo", "demo", "--target", "fw/2.0.bin", "--severity", "high", "--cve", "CVE-2024-3400"}, 0, `"name": "fw 2.0"`},
		{"bad release", "t-rita", []string{"release", "create", "--name", "x", "--repo", "demo", "--target", "../x", "--severity", "urgent"}, 1, "400 Bad Request"},
		{"create", "t-rita", []string{"create", "--release", "1", "--ring", "pilot", "--ring", "core", "--risk", "low", "--test-evidence", "lab", "--rollback-plan", "reflash"}, 0, "rollout 1: draft (2 stages)"},
		{"submit", "t-rita", []string{"submit", "1"}, 0, "rollout 1: pending_approval (0 of 1 approvals)"},
		{"own approval refused", "t-rita", []string{"approve", "1"}, 1, "separation of duties"},
		{"approve", "t-anna", []string{"approve", "1", "--remark", "ok"}, 0, "rollout 1: approved"},
		{"schedule", "t-dora", []string{"schedule", "1", "--start", "2026-03-02T13:00:00Z"}, 0, "rollout 1: scheduled to start 2026-03-02 13:00Z"},
		{"list", "t-dora", []string{"list"}, 0, "fw 2.0"},
		{"show", "t-dora", []string{"show", "1"}, 0, "rollout.approve"},
		{"no token", "", []string{"pause", "1"}, 1, "give an API token"},
		{"openings", "t-dora", []string{"openings", "--json"}, 0, `"opens_at": "2026-03-02T22:00:00Z"`},
		{"window", "t-dora", []string{"window", "add", "--name", "sat", "--cron", "0 8 * * sat", "--duration", "4h", "--zone", "America/New_York"}, 0, `"zone": "America/New_York"`},
		{"token", "t-dora", []string{"token", "create", "--name", "desks", "--ring", "pilot"}, 0, "pge1."},
	}
	for _, s := range steps {
		out, errOut, code := as(s.token, s.args...)
		if code != s.wantCode || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("%s: exit %d, want %d; output lacks %q:\n%s%s", s.name, code, s.wantCode, s.want, out, errOut)
		}
	}
	// A wrong pin is refused before anything is sent.
	_, errOut, code := run(t, "rollout", "--server", srv.URL, "--fingerprint", strings.Repeat("00", 32), "--token", "t-dora", "rings")
	if code == 0 || !strings.Contains(errOut, "does not match --fingerprint") {
		t.Errorf("wrong fingerprint: exit %d, %s", code, errOut)
	}
}

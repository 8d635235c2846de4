package rollout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/clock"
)

func TestExceptionsSeparationAndExpiry(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	x, err := v.e.RequestException(ctx, "ivy", Exception{Asset: "rx-robot-1", CVE: "CVE-2025-1234", Reason: "vendor has not certified the fix",
		Controls: "isolated VLAN, no internet egress", ExpiresAt: start.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	err = v.e.DecideException(ctx, "ivy", x.ID, true, "fine")
	if !errors.Is(err, ErrSeparation) || !strings.HasPrefix(err.Error(), "separation of duties") {
		t.Fatalf("requester approving own exception = %v, want refused", err)
	}
	if err := v.e.DecideException(ctx, "jon", x.ID, true, "controls checked"); err != nil {
		t.Fatal(err)
	}
	excused := func() bool {
		ok, err := v.e.Excused(ctx, ExceptionSubject{Assets: []string{"a-17", "rx-robot-1"}, Ring: "critical", Releases: []string{"robot 7.1"}, CVEs: []string{"CVE-2025-1234"}})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !excused() {
		t.Fatal("approved exception does not excuse")
	}
	v.clk.Advance(48*time.Hour - time.Second)
	if !excused() {
		t.Fatal("exception stopped excusing before its expiry")
	}
	v.clk.Advance(time.Second)
	if excused() {
		t.Fatal("exception still excuses at its expiry")
	}
	open, _ := v.e.Exceptions(ctx, true)
	all, _ := v.e.Exceptions(ctx, false)
	if len(open) != 0 || len(all) != 1 || all[0].State != ExExpired {
		t.Errorf("after expiry: open %d, all %+v", len(open), all)
	}
	v.e.Exceptions(ctx, false) // the expiry is recorded once
	var actions []string
	for _, a := range v.sink.actions() {
		if strings.HasPrefix(a, "exception.") {
			actions = append(actions, a)
		}
	}
	if strings.Join(actions, " ") != "exception.request exception.approve exception.expired" {
		t.Errorf("audit actions = %v", actions)
	}
}

func TestExceptionRequestRefusals(t *testing.T) {
	v := newEnv(t)
	ok := Exception{Asset: "a-1", Release: "fw 2.0", Reason: "vendor says wait", Controls: "segment isolated", ExpiresAt: start.Add(time.Hour)}
	tests := []struct {
		name string
		mod  func(*Exception)
		want string
	}{
		{"asset and ring", func(x *Exception) { x.Ring = "core" }, "name either an asset or a ring"},
		{"neither release nor cve", func(x *Exception) { x.Release = "" }, "name a release or a CVE"},
		{"bad cve", func(x *Exception) { x.CVE = "CVE-1" }, `cve must look like CVE-2024-12345, got "CVE-1"`},
		{"short reason", func(x *Exception) { x.Reason = "why" }, "give the reason (at least 10 characters)"},
		{"short controls", func(x *Exception) { x.Controls = "none" }, "describe the compensating controls (at least 10 characters)"},
		{"past expiry", func(x *Exception) { x.ExpiresAt = start }, "expires must be in the future and within a year"},
		{"too long", func(x *Exception) { x.ExpiresAt = start.Add(MaxExceptionLife + time.Hour) }, "expires must be in the future and within a year"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := ok
			tt.mod(&x)
			_, err := v.e.RequestException(context.Background(), "ivy", x)
			if !errors.Is(err, ErrInvalid) || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestExceptionRowsSurviveTheMove makes the table as auth's first migration made it, with
// a row as auth wrote it, then opens the engine (migration 0002): the row is still there
// and still excuses.
func TestExceptionRowsSurviveTheMove(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	ddl, err := migrationFiles.ReadFile("migrations/0002_exceptions.sql")
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(ddl), "CREATE TABLE IF NOT EXISTS", "CREATE TABLE", 1)
	if _, err := db.ExecContext(ctx, old); err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO auth_exceptions(asset, release, reason, controls, state, requested_by, requested_at, decided_by, decided_at, expires_at, review_at)
		VALUES('a-1', 'fw 2.0', 'vendor says wait', 'segment isolated', 'approved', 'ivy', '2026-03-01T09:00:00Z', 'jon', '2026-03-01T10:30:00.5Z', '2026-03-09T00:00:00Z', '2026-03-08T09:00:00Z')`)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(ctx, Config{}, Options{DB: db, Clock: clock.NewFake(start), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.Exceptions(ctx, false)
	if err != nil || len(all) != 1 {
		t.Fatalf("exceptions after the migration = %+v, %v", all, err)
	}
	if x := all[0]; x.DecidedAt != time.Date(2026, 3, 1, 10, 30, 0, 5e8, time.UTC) || x.State != ExApproved || x.DecidedBy != "jon" {
		t.Errorf("exception read back = %+v", x)
	}
	if ok, err := e.Excused(ctx, ExceptionSubject{Assets: []string{"a-1"}, Releases: []string{"fw 2.0"}}); !ok || err != nil {
		t.Errorf("excused = %v, %v; want the old row to excuse", ok, err)
	}
}

package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/httpapi"
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

func TestApproveRolloutGuard(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	rel := v.release(t, Release{})
	r, err := v.e.CreateRollout(ctx, "kim", pilotCore(rel.ID))
	if err != nil {
		t.Fatal(err)
	}
	must(t)(v.e.Submit(ctx, r.ID, "kim"))
	tests := []struct {
		name, actor, remark string
		want                error
	}{
		{"requester", "kim", "mine", ErrSeparation},
		{"no remark", "lee", "", ErrInvalid},
		{"unknown rollout", "lee", "ok", ErrNotFound},
		{"approver", "lee", "ok", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := r.ID
			if tt.want == ErrNotFound {
				id = 999
			}
			if err := v.e.ApproveRollout(ctx, tt.actor, id, true, tt.remark); !errors.Is(err, tt.want) {
				t.Errorf("ApproveRollout = %v, want %v", err, tt.want)
			}
		})
	}
	if got := v.rollout(t, r.ID); got.State != Approved || len(got.Approvals) != 1 || got.Approvals[0].By != "lee" {
		t.Errorf("rollout after approval: %s %+v", got.State, got.Approvals)
	}
}

// jsonForms is a Forms for API clients only: JSON in and out, errors by kind.
type jsonForms struct{}

func (jsonForms) Input(r *http.Request) (map[string]string, error) {
	in := map[string]string{}
	b, _ := io.ReadAll(r.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &in); err != nil {
			return nil, refusef(ErrInvalid, "body: %v", err)
		}
	}
	return in, nil
}

func (jsonForms) Done(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ string, code int, v any) {
	httpapi.WriteJSON(w, code, v)
}

func (jsonForms) Fail(w http.ResponseWriter, _ *http.Request, err error) {
	code := http.StatusInternalServerError
	for kind, c := range map[error]int{ErrInvalid: 400, ErrSeparation: 403, ErrNotFound: 404, ErrState: 409, ErrUnauthenticated: 401} {
		if errors.Is(err, kind) {
			code = c
		}
	}
	httpapi.WriteError(w, code, err.Error())
}

func (jsonForms) Render(w http.ResponseWriter, _ *http.Request, _ string, data any) {
	httpapi.WriteJSON(w, http.StatusOK, data)
}

func TestPages(t *testing.T) {
	v := newEnv(t)
	mux := http.NewServeMux()
	NewPages(v.e, func(r *http.Request) (string, error) {
		if a := r.Header.Get(ActorHeader); a != "" {
			return a, nil
		}
		return "", errors.New("who are you")
	}, jsonForms{}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ivy, jon := client{t, srv.URL, map[string]string{ActorHeader: "ivy"}}, client{t, srv.URL, map[string]string{ActorHeader: "jon"}}
	anon := client{t, srv.URL, nil}

	var x Exception
	if st, raw := ivy.do("POST", "/api/v1/exceptions", map[string]string{"asset": "a-1", "cve": "CVE-2025-1234", "reason": "vendor says wait",
		"compensating_controls": "segment isolated", "expires_at": "2026-03-20"}, &x); st != 201 || x.ID == 0 || x.RequestedBy != "ivy" {
		t.Fatalf("request = %d %s", st, raw)
	}
	rel := v.release(t, Release{})
	ro := must(t)(v.e.CreateRollout(context.Background(), "ivy", pilotCore(rel.ID))).(*Rollout)
	must(t)(v.e.Submit(context.Background(), ro.ID, "ivy"))
	id := itoa(x.ID)
	tests := []struct {
		name   string
		c      client
		method string
		path   string
		body   any
		want   int
		answer string
	}{
		{"bad date", ivy, "POST", "/api/v1/exceptions", map[string]string{"expires_at": "soon"}, 400, `"expires_at: want a date like 2026-04-30 or an RFC 3339 time, got \"soon\""`},
		{"anonymous", anon, "POST", "/api/v1/exceptions/" + id + "/approve", map[string]string{"remark": "x"}, 401, ""},
		{"bad id", jon, "POST", "/api/v1/exceptions/x/approve", map[string]string{"remark": "x"}, 400, `"bad id \"x\""`},
		{"own exception", ivy, "POST", "/api/v1/exceptions/" + id + "/approve", map[string]string{"remark": "x"}, 403, ""},
		{"approve", jon, "POST", "/api/v1/exceptions/" + id + "/approve", map[string]string{"remark": "checked"}, 200, `{"status":"ok"}`},
		{"approve again", jon, "POST", "/api/v1/exceptions/" + id + "/approve", map[string]string{"remark": "checked"}, 409, `"exception ` + id + ` is approved, not requested"`},
		{"review", jon, "POST", "/api/v1/exceptions/" + id + "/review", map[string]string{"remark": "still needed"}, 200, `{"status":"ok"}`},
		{"open list", anon, "GET", "/api/v1/exceptions?open=1", nil, 200, `"state":"approved"`},
		{"page", anon, "GET", "/exceptions", nil, 200, `"decided_by":"jon"`},
		{"approvals", anon, "GET", "/api/v1/approvals", nil, 200, `"requested_by":"ivy"`},
		{"approvals page", anon, "GET", "/approvals", nil, 200, `"rollback_plan":"reflash 1.9"`},
		{"own rollout", ivy, "POST", "/api/v1/approvals/" + itoa(ro.ID) + "/approve", map[string]string{"remark": "x"}, 403, "cannot approve or reject it"},
		{"approve rollout", jon, "POST", "/api/v1/approvals/" + itoa(ro.ID) + "/approve", map[string]string{"remark": "ok"}, 200, `"status":"approval recorded"`},
		{"revoke", jon, "POST", "/api/v1/exceptions/" + id + "/revoke", map[string]string{"remark": "patched"}, 200, `{"status":"ok"}`},
		{"nothing pending", anon, "GET", "/api/v1/approvals", nil, 200, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, raw := tt.c.do(tt.method, tt.path, tt.body, nil)
			var compact bytes.Buffer
			json.Compact(&compact, raw)
			if st != tt.want || !strings.Contains(compact.String(), tt.answer) {
				t.Errorf("%s %s = %d %s, want %d with %s", tt.method, tt.path, st, raw, tt.want, tt.answer)
			}
		})
	}
}

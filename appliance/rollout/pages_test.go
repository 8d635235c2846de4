package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/appliance/httpapi"
)

// jsonForms is a Forms for API clients only: JSON in and out, errors by kind.
type jsonForms struct{}

func (jsonForms) Input(r *http.Request, _ ...string) (map[string]string, error) {
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

// pagesServer serves v's pages on loopback, the actor named by ActorHeader.
func (v *env) pagesServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	NewPages(v.e, func(r *http.Request) (string, error) {
		if a := r.Header.Get(ActorHeader); a != "" {
			return a, nil
		}
		return "", errors.New("who are you")
	}, jsonForms{}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestPages(t *testing.T) {
	v := newEnv(t)
	srv := v.pagesServer(t)
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

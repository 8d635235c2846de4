package selfupdate

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, json, want string // want: "" for valid, else part of the error
	}{
		{"install", `{"id":"0123456789abcdef","action":"install","version":"1.2","reboot":true,"requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, ""},
		{"rollback", `{"id":"0123456789abcdef","action":"rollback","reboot":false,"requested_by":"bob@site","requested_at":"2026-11-23T10:00:00Z"}`, ""},
		{"unknown action", `{"id":"0123456789abcdef","action":"format","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, "action"},
		{"version with a path", `{"id":"0123456789abcdef","action":"install","version":"../1.2","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, "version"},
		{"install without version", `{"id":"0123456789abcdef","action":"install","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, "version"},
		{"rollback with version", `{"id":"0123456789abcdef","action":"rollback","version":"1.2","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, "only for install"},
		{"short id", `{"id":"0123","action":"rollback","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`, "id"},
		{"actor with spaces", `{"id":"0123456789abcdef","action":"rollback","requested_by":"a b","requested_at":"2026-11-23T10:00:00Z"}`, "requested_by"},
		{"no time", `{"id":"0123456789abcdef","action":"rollback","requested_by":"alice"}`, "requested_at"},
		{"unknown field", `{"id":"0123456789abcdef","action":"rollback","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z","slot":"/dev/sda"}`, "unknown field"},
		{"two objects", `{"id":"0123456789abcdef","action":"rollback","requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"} {}`, "data after"},
		{"too long", `{"id":"` + strings.Repeat("0", maxFile) + `"}`, "at most"},
		{"not JSON", `reboot`, "invalid character"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(tc.json))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseRequest: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("ParseRequest: %v, want an error about %q", err, tc.want)
			case err != nil && !strings.HasPrefix(err.Error(), "selfupdate: request: "):
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}
}

// FuzzParseRequest: the installer runs as root on a file the unprivileged daemon wrote.
// Whatever it holds, parsing returns an error or a request that survives a round trip.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"id":"0123456789abcdef","action":"install","version":"1.2","reboot":true,"requested_by":"alice","requested_at":"2026-11-23T10:00:00Z"}`))
	f.Add([]byte(`{"id":"0123456789abcdef","action":"rollback","requested_by":"a","requested_at":"2026-11-23T10:00:00+01:00"}`))
	f.Add([]byte(`{"id":"0123456789abcdef","ok":true,"action":"install"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseResult(data); err == nil {
			if _, err := ParseResult(mustJSON(r)); err != nil {
				t.Fatalf("result %+v does not survive a round trip: %v", r, err)
			}
		}
		r, err := ParseRequest(data)
		if err != nil {
			return
		}
		back, err := ParseRequest(mustJSON(r))
		if err != nil {
			t.Fatalf("request %+v does not survive a round trip: %v", r, err)
		}
		if back.ID != r.ID || back.Action != r.Action || back.Version != r.Version || !back.RequestedAt.Equal(r.RequestedAt) {
			t.Fatalf("round trip changed %+v into %+v", r, back)
		}
	})
}

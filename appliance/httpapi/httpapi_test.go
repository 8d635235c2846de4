package httpapi

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		code     int
		wantCode int
		wantBody string
	}{
		{"object", map[string]int{"a": 1}, 201, 201, "{\n  \"a\": 1\n}\n"},
		{"error", Error{Error: "no"}, 404, 404, "{\n  \"error\": \"no\"\n}\n"},
		{"retry", Error{Error: "later", RetryAfterSeconds: 60}, 503, 503, "{\n  \"error\": \"later\",\n  \"retry_after_seconds\": 60\n}\n"},
		{"unencodable", map[string]any{"f": func() {}}, 200, 500, "{\"error\": \"internal error encoding the response\"}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteJSON(rec, tt.code, tt.v)
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("WriteJSON(%v) = %d %q, want %d %q", tt.v, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if ct, cc := rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("headers Content-Type %q Cache-Control %q, want application/json, no-store", ct, cc)
			}
		})
	}
	rec := httptest.NewRecorder()
	WriteError(rec, 400, "bad")
	if rec.Code != 400 || rec.Body.String() != "{\n  \"error\": \"bad\"\n}\n" {
		t.Errorf("WriteError = %d %q", rec.Code, rec.Body)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name      string
		body      string
		lenient   bool
		wantName  string
		wantErr   string // substring; "" for none
		wantLarge bool
	}{
		{"good", `{"name":"x"}`, false, "x", "", false},
		{"unknown key named", `{"name":"x","colour":"red"}`, false, "", `unknown field "colour"`, false},
		{"unknown key, lenient", `{"name":"x","colour":"red"}`, true, "x", "", false},
		{"trailing value", `{"name":"x"} {"name":"y"}`, false, "", "data after", false},
		{"trailing brace", `{"name":"x"}}`, false, "", "data after", false},
		{"not JSON", `{`, false, "", "EOF", false},
		{"too large", `{"name":"` + strings.Repeat("a", 100) + `"}`, false, "", "over 64 bytes", true},
		{"too large, lenient", `{"name":"` + strings.Repeat("a", 100) + `"}`, true, "", "over 64 bytes", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			var b body
			decode := DecodeJSON
			if tt.lenient {
				decode = DecodeJSONLenient
			}
			err := decode(httptest.NewRecorder(), r, &b, 64)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("decode(%q) = %v, want nil", tt.body, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("decode(%q) = %v, want an error containing %q", tt.body, err, tt.wantErr)
			}
			if got := errors.Is(err, ErrTooLarge); got != tt.wantLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, got, tt.wantLarge)
			}
			if err == nil && b.Name != tt.wantName {
				t.Errorf("decoded name %q, want %q", b.Name, tt.wantName)
			}
		})
	}
}

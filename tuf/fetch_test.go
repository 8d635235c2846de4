package tuf

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestNewGetRequest(t *testing.T) {
	for _, tc := range []struct {
		name         string
		userAgent    string
		offset       int64
		wantUA       string
		wantRange    string
		wantRejected bool
		url          string
	}{
		{name: "plain", url: "https://v.example/a"},
		{name: "user agent", url: "https://v.example/a", userAgent: "patchgate/1", wantUA: "patchgate/1"},
		{name: "resume", url: "https://v.example/a", offset: 4096, wantRange: "bytes=4096-"},
		{name: "bad url", url: "https://v.example/\x7f", wantRejected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := NewGetRequest(context.Background(), tc.url, tc.userAgent, tc.offset)
			if tc.wantRejected {
				if err == nil {
					t.Fatalf("NewGetRequest(%q) = nil error, want one", tc.url)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != "GET" || req.Header.Get("User-Agent") != tc.wantUA || req.Header.Get("Range") != tc.wantRange {
				t.Errorf("request = %s with User-Agent %q, Range %q; want GET, %q, %q", req.Method,
					req.Header.Get("User-Agent"), req.Header.Get("Range"), tc.wantUA, tc.wantRange)
			}
		})
	}
}

// TestGetMetadata: a 200 body within the limit comes back whole; anything else is the
// error type go-tuf acts on.
func TestGetMetadata(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("x", 10)
		switch r.URL.Path {
		case "/missing.json":
			http.NotFound(w, r)
			return
		case "/streamed.json": // no Content-Length: the limit is found while reading
			w.(http.Flusher).Flush()
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	var httpErr *metadata.ErrDownloadHTTP
	var lengthErr *metadata.ErrDownloadLengthMismatch
	for _, tc := range []struct {
		name, path string
		limit      int64
		want       any // nil: the body; else the error type
	}{
		{"within the limit", "/root.json", 10, nil},
		{"not found", "/missing.json", 10, &httpErr},
		{"announced too long", "/root.json", 9, &lengthErr},
		{"sent too long", "/streamed.json", 9, &lengthErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := GetMetadata(context.Background(), srv.Client(), srv.URL+tc.path, "", tc.limit)
			if tc.want == nil {
				if err != nil || len(data) != 10 {
					t.Fatalf("GetMetadata = %q, %v; want 10 bytes", data, err)
				}
				return
			}
			if !errors.As(err, tc.want) {
				t.Fatalf("GetMetadata = %v (%T), want %T", err, err, tc.want)
			}
		})
	}
}

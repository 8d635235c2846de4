package tuf

import (
	"context"
	"testing"
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

// Package httpapitest sends test requests to the appliance's HTTP APIs and pages: a
// request built from a body and header pairs, sent with any client, its status and body
// read back, failing the test on a transport error.
package httpapitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// NewRequest builds a request for method and url. An io.Reader body is sent as it is;
// a string as it is and any other non-nil value JSON-encoded, both marked
// application/json; nil sends none. The header pairs (name, value, ...) are set after
// that; a pair with an empty value is left out.
func NewRequest(t testing.TB, method, url string, body any, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	case string:
		r, isJSON = strings.NewReader(b), true
	default:
		r, isJSON = bytes.NewReader(mustJSON(t, b)), true
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return req
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode request body: %v", err)
	}
	return b
}

// Do sends req with c (nil: http.DefaultClient) and returns the response, whose body
// is read and closed, and that body.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Fetch sends one request with the header pairs given (name, value, ...; a pair with
// an empty value is left out) and returns the status and the body.
func Fetch(t testing.TB, method, url string, body io.Reader, header ...string) (int, string) {
	t.Helper()
	resp, b := Do(t, nil, NewRequest(t, method, url, body, header...))
	return resp.StatusCode, string(b)
}

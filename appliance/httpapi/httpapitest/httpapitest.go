// Package httpapitest sends test requests to the appliance's HTTP APIs and pages: one
// request in, its status and body out, failing the test on a transport error.
package httpapitest

import (
	"io"
	"net/http"
	"testing"
)

// Fetch sends one request with the header pairs given (name, value, ...; a pair with
// an empty value is left out) and returns the status and the body.
func Fetch(t testing.TB, method, url string, body io.Reader, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

package cache

import "testing"

// FuzzLeanRequest feeds request headers to the Lean loop's parser: it must never panic,
// and what it accepts must be a GET or HEAD under /repos/ with one Host.
func FuzzLeanRequest(f *testing.F) {
	f.Add([]byte("GET /repos/demo/targets/obj HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("HEAD /repos/demo/targets/a/b HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nConnection: keep-alive\r\n\r\n"))
	f.Add([]byte("GET /repos/x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"))
	f.Add([]byte("GET /repos/x HTTP/1.0\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 || string(b[len(b)-4:]) != "\r\n\r\n" {
			b = append(b, "\r\n\r\n"...)
		}
		p, ok := parseLeanRequest(b)
		if !ok {
			return
		}
		if (p.method != "GET" && p.method != "HEAD") || len(p.target) < 7 || p.target[:7] != "/repos/" || p.host == "" || p.header["Host"] != nil {
			t.Fatalf("accepted %q: %+v", b, p)
		}
	})
}

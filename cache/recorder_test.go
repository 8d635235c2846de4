package cache

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readFromRecorder is an httptest.ResponseRecorder that says when ReadFrom (the
// connection's sendfile path) was used.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

func TestRecorder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "object")
	body := strings.Repeat("0123456789", 1000)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	serveFile := func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "object", time.Time{}, f)
	}
	cases := []struct {
		name        string
		rangeHdr    string
		handler     http.HandlerFunc
		status      int // Status()
		code        int // Code()
		bytes       int64
		viaReadFrom bool
	}{
		{"whole file", "", serveFile, 200, 200, 10000, true},
		{"range", "bytes=100-199", serveFile, 206, 206, 100, true},
		{"error", "", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", 404) }, 404, 404, 5, false},
		{"nothing written", "", func(http.ResponseWriter, *http.Request) {}, 0, 200, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/x", nil)
			if tc.rangeHdr != "" {
				req.Header.Set("Range", tc.rangeHdr)
			}
			under := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
			rec := newRecorder(under)
			tc.handler(rec, req)
			if rec.Status() != tc.status || rec.Code() != tc.code || rec.Bytes() != tc.bytes {
				t.Errorf("status %d code %d bytes %d, want %d %d %d", rec.Status(), rec.Code(), rec.Bytes(), tc.status, tc.code, tc.bytes)
			}
			if int64(under.Body.Len()) != tc.bytes {
				t.Errorf("%d bytes reached the writer, recorded %d", under.Body.Len(), tc.bytes)
			}
			if under.readFrom != tc.viaReadFrom {
				t.Errorf("ReadFrom used: %v, want %v (sendfile for a file body)", under.readFrom, tc.viaReadFrom)
			}
			if http.NewResponseController(rec).Flush() != nil {
				t.Error("Flush through the recorder failed")
			}
		})
	}
}

package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// smallHitEnv is an env holding one warm 4 KiB target (in the cache's memory
// copies after the first request).
func smallHitEnv(b *testing.B) (*env, []byte) {
	b.Helper()
	data := tuftest.NewGenerated(4<<10, 7)
	body, err := io.ReadAll(data.Open())
	if err != nil {
		b.Fatal(err)
	}
	repo := tuftest.New(b, tuftest.WithHashes("sha256"))
	repo.AddTarget("obj/4KiB", body)
	repo.Publish()
	e := newEnv(b, repo)
	e.refresh(b)
	return e, body
}

// BenchmarkSmallHit measures a cached hit on a 4 KiB target served from
// the cache's verified memory copy; allocs/op is the figure to watch.
//
//   - handler/*: Handler.ServeHTTP alone through a reused ResponseWriter
//     (our code's cost, without net/http's);
//   - loopback: a real net/http server on loopback and a raw keep-alive
//     HTTP/1.1 client on one connection (the whole request; allocs/op
//     counts the server's and net/http's allocations too).
func BenchmarkSmallHit(b *testing.B) {
	e, body := smallHitEnv(b)
	const path = "/repos/demo/targets/obj/4KiB"
	etag := `"` + sha256Hex(body) + `"`
	uncapped, err := cache.NewShaper(cache.ShaperConfig{}, cache.ShaperOptions{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		header []string
		want   int
		wrap   func(*testing.B)
	}{
		{name: "handler/get", want: 200},
		{name: "handler/get-uncapped-shaper", want: 200, wrap: func(*testing.B) { e.handler.Shaper = uncapped }},
		{name: "handler/get-gate", want: 200, wrap: func(*testing.B) { e.handler.Gate = admitAll{} }},
		{name: "handler/range", header: []string{"Range", "bytes=100-199"}, want: 206},
		{name: "handler/if-none-match", header: []string{"If-None-Match", etag}, want: 304},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			if tc.wrap != nil {
				tc.wrap(b)
				b.Cleanup(func() { e.handler.Shaper, e.handler.Gate = nil, nil })
			}
			req := httptest.NewRequest(http.MethodGet, path, nil)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			w := &discardWriter{h: http.Header{}}
			e.handler.ServeHTTP(w, req) // the miss, then the memory copy
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				clear(w.h)
				w.status, w.n = 0, 0
				e.handler.ServeHTTP(w, req)
			}
			b.StopTimer()
			if w.status != tc.want {
				b.Fatalf("status %d, want %d", w.status, tc.want)
			}
			if tc.want == 200 && w.n != int64(len(body)) {
				b.Fatalf("served %d bytes, want %d", w.n, len(body))
			}
		})
	}
	w := &discardWriter{h: http.Header{}}
	for range 2 { // the miss, then the memory copy (a Lean connection that meets a miss goes to net/http for good)
		clear(w.h)
		e.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	}
	// loopback: net/http; lean-loopback: the same handler behind cache.Lean (the
	// distribution listener's loop).
	for _, server := range []string{"loopback", "lean-loopback"} {
		b.Run(server, func(b *testing.B) {
			addr := e.srv.Listener.Addr().String()
			if server == "lean-loopback" {
				addr = strings.TrimPrefix(leanServer(b, e.handler, nil), "http://")
			}
			loopbackHits(b, addr, path, body)
		})
	}
}

// loopbackHits times GETs of path on one keep-alive connection to addr.
func loopbackHits(b *testing.B, addr, path string, body []byte) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReaderSize(conn, 16<<10)
	reqBytes := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	buf := make([]byte, len(body))
	get := func() error {
		if _, err := conn.Write(reqBytes); err != nil {
			return err
		}
		n, err := readResponse(rd, buf)
		if err == nil && n != len(body) {
			err = fmt.Errorf("body of %d bytes, want %d", n, len(body))
		}
		return err
	}
	if err := get(); err != nil {
		b.Fatal(err)
	}
	if !bytes.Equal(buf, body) {
		b.Fatal("body differs from the target")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length and status
// 200 into buf, returning the body length.
func readResponse(rd *bufio.Reader, buf []byte) (int, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return 0, fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		line, err = rd.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return 0, err
			}
		}
	}
	if length < 0 || length > len(buf) {
		return 0, fmt.Errorf("Content-Length %d", length)
	}
	return io.ReadFull(rd, buf[:length])
}

// discardWriter is a reusable ResponseWriter that drops the body (with
// ReadFrom, as net/http's has, so ServeContent takes its usual path).
type discardWriter struct {
	h      http.Header
	status int
	n      int64
	buf    [32 << 10]byte
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += int64(len(p))
	return len(p), nil
}

func (w *discardWriter) ReadFrom(r io.Reader) (int64, error) {
	w.WriteHeader(http.StatusOK)
	var total int64
	for {
		n, err := r.Read(w.buf[:])
		total += int64(n)
		w.n += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// admitAll is a Gate other than cache.AllowAll that admits everything (the
// cost of asking a real gate).
type admitAll struct{}

func (admitAll) Admit(context.Context, cache.GateRequest) (cache.Decision, func(cache.Served)) {
	return cache.Decision{Allow: true}, nil
}

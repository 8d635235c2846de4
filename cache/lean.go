package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Lean serves the commonest request on the distribution listener — a plain HTTP/1.1
// GET or HEAD of a small target held verified in memory — on each connection's own
// loop, and hands every connection whose request is anything else to net/http, for
// good (its Listener returns those connections to http.Server.Serve).
//
// Why: for a 4 KiB hit net/http's own per-request cost dominates (a goroutine and a
// background read per request, two writes for a 4 KiB body behind its 4 KiB connection
// buffer); the loop reads requests itself and answers each with one write.
//
// What stays the same: the request goes through the listener's whole handler chain
// (vendor host routing, mux, cache handler: lookup, gate and its done callback, shaper,
// counters) with an *http.Request like net/http's and a ResponseWriter that buffers the
// answer (at most leanBuffer bytes; a larger one streams, delimited by its
// Content-Length or by closing the connection). Range, conditional, bodies, Expect,
// Upgrade, "Connection: close", HTTP/1.0, a query string, an unclean path or anything
// the parser does not know for certain goes to net/http with the bytes already read.
type Lean struct {
	// Handler is the listener's handler chain (read on every request: it may be set
	// after the Lean is made).
	Handler func() http.Handler
	// Small reports whether a GET or HEAD of the escaped path would be answered from
	// memory (Handler.Small).
	Small func(ctx context.Context, escapedPath string) bool
	// IdleTimeout bounds the wait for a request's first byte, ReadHeaderTimeout the
	// rest of its header (net/http's meanings; zero: none).
	IdleTimeout, ReadHeaderTimeout time.Duration
}

// leanBuffer is the largest answer the loop buffers whole (objects kept in memory are
// at most 64 KiB by default).
const leanBuffer = 256 << 10

// leanMaxHeader is the largest request header the loop parses; a larger one goes to
// net/http (which allows 1 MB).
const leanMaxHeader = 4 << 10

// Listener returns ln wrapped: it accepts ln's connections and serves them with the
// loop; Accept returns the connections handed to net/http. Close closes ln and every
// connection the loop still holds (a small answer in progress is cut, as
// http.Server.Close would).
func (l *Lean) Listener(ln net.Listener) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	ll := &leanListener{Listener: ln, lean: l, ctx: ctx, cancel: cancel,
		handoff: make(chan net.Conn), done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	go ll.acceptLoop()
	return ll
}

type leanListener struct {
	net.Listener
	lean    *Lean
	ctx     context.Context
	cancel  context.CancelFunc
	handoff chan net.Conn
	done    chan struct{} // closed by Close

	mu      sync.Mutex
	err     error // the inner Accept's error, once it failed
	conns   map[net.Conn]struct{}
	closing bool
	once    sync.Once
}

func (ll *leanListener) acceptLoop() {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ll.mu.Lock()
			ll.err = err
			ll.mu.Unlock()
			ll.Close()
			return
		}
		if !ll.track(c) {
			c.Close()
			return
		}
		go ll.serve(c)
	}
}

// Accept returns the next connection handed to net/http.
func (ll *leanListener) Accept() (net.Conn, error) {
	select {
	case c := <-ll.handoff:
		return c, nil
	case <-ll.done:
		ll.mu.Lock()
		defer ll.mu.Unlock()
		if ll.err != nil {
			return nil, ll.err
		}
		return nil, net.ErrClosed
	}
}

func (ll *leanListener) Close() error {
	var err error
	ll.once.Do(func() {
		err = ll.Listener.Close()
		ll.cancel()
		ll.mu.Lock()
		ll.closing = true
		conns := make([]net.Conn, 0, len(ll.conns))
		for c := range ll.conns {
			conns = append(conns, c)
		}
		ll.mu.Unlock()
		for _, c := range conns {
			c.Close() // waits for an answer in progress on c to return (serveRaw)
		}
		close(ll.done)
	})
	return err
}

func (ll *leanListener) track(c net.Conn) bool {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	if ll.closing {
		return false
	}
	ll.conns[c] = struct{}{}
	return true
}

func (ll *leanListener) untrack(c net.Conn) {
	ll.mu.Lock()
	delete(ll.conns, c)
	ll.mu.Unlock()
}

// leanConn is the state of one connection served by the loop.
type leanConn struct {
	ll     *leanListener
	c      net.Conn
	remote string
	body   []byte // the body being buffered, reused
	out    []byte // the answer being written, reused
	// ctx is the context of the connection's requests: the listener's, carrying hint.
	ctx  context.Context
	tmpl *http.Request // an empty request with ctx, copied for each request
	hint smallHint
	rw   leanWriter // the ResponseWriter of every answer, reset for each

	// The bytes read and not yet consumed are in[r:w] (in has leanMaxHeader of room).
	in   []byte
	r, w int
	// drained: the last raw read returned less than it had room for, so the socket's
	// queue was empty then and any byte arriving later signals the poller.
	drained bool
	fd      int                          // the socket, while in raw mode's callback
	readFD  func([]byte) (int, error)    // lc.readRaw, made once
	step    func(fd uintptr) (done bool) // lc.rawStep, made once
	dl      leanDeadline                 // the read deadline set now
	end     leanEnd                      // why the loop stopped
}

// leanDeadline is the read deadline a connection has set.
type leanDeadline uint8

const (
	deadlineNone   leanDeadline = iota
	deadlineIdle                // waiting for a request's first byte (IdleTimeout)
	deadlineHeader              // waiting for the rest of a header (ReadHeaderTimeout)
)

// leanEnd is how a connection leaves the loop.
type leanEnd uint8

const (
	endClose   leanEnd = iota // closed, broken, timed out or answered with a close
	endHandoff                // the next request goes to net/http with the bytes read
)

// errWouldBlock is a raw read that found nothing waiting.
var errWouldBlock = errors.New("lean: would block")

func (ll *leanListener) serve(c net.Conn) {
	lc := &leanConn{ll: ll, c: c, remote: c.RemoteAddr().String(), in: make([]byte, leanMaxHeader)}
	lc.ctx = context.WithValue(ll.ctx, smallHintKey{}, &lc.hint)
	lc.tmpl = (&http.Request{}).WithContext(lc.ctx)
	lc.rw.header = make(http.Header, 8)
	handed := false
	defer func() {
		ll.untrack(c)
		if !handed {
			c.Close()
		}
	}()
	raw := syscall.RawConn(nil)
	if sc, ok := c.(syscall.Conn); ok {
		raw, _ = sc.SyscallConn()
	}
	if raw != nil {
		lc.serveRaw(raw)
	} else {
		lc.loop(c.Read, false) // a wrapped connection: each read blocks
	}
	if lc.end != endHandoff {
		return
	}
	if lc.dl != deadlineNone {
		c.SetReadDeadline(time.Time{})
	}
	select {
	case ll.handoff <- &handedConn{Conn: c, buffered: lc.in[lc.r:lc.w]}:
		handed = true
	case <-ll.done:
	}
}

// serveRaw runs the loop inside one RawConn.Read, reading the socket itself: after a
// read that drained the socket and the answers to every request it completed, the
// callback returns false and the runtime parks the goroutine in the poller until the
// next bytes arrive. A RawConn.Read (or net.Conn.Read) per request would clear the
// poller's readiness and so must try a read first, which on a keep-alive connection
// finds nothing (EAGAIN) after nearly every answer: one system call per request for
// nothing (the same change as the resolver's UDP reader). Bytes queued after a
// draining read signal the edge-triggered poller, so none waits unseen. Close cancels
// the context of an answer in progress and makes its writes fail at once; the
// descriptor is released when that answer returns.
func (lc *leanConn) serveRaw(raw syscall.RawConn) {
	lc.readFD, lc.step = lc.readRaw, lc.rawStep
	if err := raw.Read(lc.step); err != nil {
		lc.failed(err)
	}
}

func (lc *leanConn) rawStep(fd uintptr) bool {
	lc.fd = int(fd)
	return lc.loop(lc.readFD, true)
}

// readRaw is one non-blocking read of the socket.
func (lc *leanConn) readRaw(p []byte) (int, error) {
	for {
		n, err := syscall.Read(lc.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		lc.drained = n < len(p)
		return n, nil
	}
}

// failed ends the loop after a failed read or wait (EOF, a timeout, a broken or closed
// connection): a partial header goes to net/http, which answers what it can; otherwise
// the connection closes.
func (lc *leanConn) failed(err error) {
	lc.end = endClose
	if lc.w > lc.r && !errors.Is(err, net.ErrClosed) {
		lc.end = endHandoff
	}
}

// loop answers every complete request buffered, then reads more. It returns true when
// the connection leaves the loop (lc.end says how), false when a raw read found nothing
// or the last one drained the socket: the poller is to wait for more.
func (lc *leanConn) loop(read func([]byte) (int, error), raw bool) bool {
	l := lc.ll.lean
	for {
		for {
			end := bytes.Index(lc.in[lc.r:lc.w], crlfcrlf)
			if end < 0 {
				break
			}
			lc.hint = smallHint{}
			p, ok := parseLeanRequest(lc.in[lc.r : lc.r+end+4])
			if !ok || !l.Small(lc.ctx, p.target) {
				lc.end = endHandoff
				return true
			}
			lc.r += end + 4
			if lc.dl == deadlineHeader {
				lc.dl = deadlineIdle // a deadline is set, but not for the next header
			}
			if !lc.answer(lc.request(p)) {
				lc.end = endClose
				return true
			}
		}
		pending := lc.w - lc.r
		if pending >= leanMaxHeader {
			lc.end = endHandoff
			return true
		}
		if raw && lc.drained {
			lc.drained = false
			lc.setDeadline(pending > 0)
			return false
		}
		if lc.r > 0 {
			lc.w = copy(lc.in, lc.in[lc.r:lc.w])
			lc.r = 0
		}
		if !raw {
			lc.setDeadline(pending > 0)
		}
		n, err := read(lc.in[lc.w:])
		lc.w += n
		switch {
		case err == errWouldBlock:
			lc.setDeadline(pending > 0)
			return false
		case err != nil && n == 0:
			lc.failed(err)
			return true
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// setDeadline sets the read deadline for a wait: IdleTimeout for a request's first
// byte, ReadHeaderTimeout (from the first bytes of its header on) for the rest.
func (lc *leanConn) setDeadline(inHeader bool) {
	l := lc.ll.lean
	want, d := deadlineIdle, l.IdleTimeout
	if inHeader {
		if lc.dl == deadlineHeader {
			return // set when the header's first bytes came
		}
		want, d = deadlineHeader, l.ReadHeaderTimeout
	}
	if d <= 0 {
		if lc.dl != deadlineNone {
			lc.c.SetReadDeadline(time.Time{})
			lc.dl = deadlineNone
		}
		return
	}
	lc.c.SetReadDeadline(time.Now().Add(d))
	lc.dl = want
}

// leanRequest is a request header the loop answers.
type leanRequest struct {
	method, target, host string
	header               http.Header
}

// parseLeanRequest parses a request header (through its blank line); ok is false for
// anything the loop leaves to net/http. It never panics (FuzzLeanRequest).
func parseLeanRequest(b []byte) (leanRequest, bool) {
	var p leanRequest
	s := string(b[:len(b)-2]) // the lines, each ending in CRLF
	line, rest, _ := strings.Cut(s, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || (method != http.MethodGet && method != http.MethodHead) {
		return p, false
	}
	if !strings.HasPrefix(target, "/repos/") || strings.ContainsAny(target, "?#\\ \t") ||
		strings.Contains(target, "//") || strings.Contains(target, "/./") || strings.Contains(target, "/../") ||
		strings.HasSuffix(target, "/.") || strings.HasSuffix(target, "/..") {
		return p, false
	}
	for i := range len(target) {
		if target[i] < 0x21 || target[i] > 0x7e {
			return p, false
		}
	}
	p.method, p.target, p.header = method, target, make(http.Header, 4)
	// One backing array for the header's values (a value slice each, capped so an
	// append by a handler copies).
	vals := make([]string, 0, strings.Count(rest, "\r\n"))
	hosts := 0
	for rest != "" {
		var kv string
		kv, rest, _ = strings.Cut(rest, "\r\n")
		k, v, ok := strings.Cut(kv, ":")
		if !ok || k == "" || !validHeaderName(k) {
			return p, false // also obs-fold (a leading space) and bare LF
		}
		v = strings.Trim(v, " \t")
		if strings.ContainsAny(v, "\r\n\x00") {
			return p, false
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		switch k {
		case "Host":
			hosts++
			p.host = v
			continue // as net/http: r.Host, not in the header
		case "Connection":
			if !strings.EqualFold(v, "keep-alive") {
				return p, false
			}
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Trailer", "Te",
			"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since":
			return p, false
		}
		if old, ok := p.header[k]; ok {
			p.header[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		p.header[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if hosts != 1 || p.host == "" || strings.ContainsAny(p.host, " \t/") {
		return p, false // net/http answers 400
	}
	return p, true
}

// validHeaderName reports whether k is an RFC 7230 token.
func validHeaderName(k string) bool {
	for i := range len(k) {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// request builds the *http.Request the handler chain sees.
//
// It is what http.NewRequestWithContext would make, in one allocation: the request and
// its URL together, the context copied from the connection's template (lc.tmpl), the
// URL filled as url.ParseRequestURI fills it for a target without escapes (one with
// escapes is parsed by it).
func (lc *leanConn) request(p leanRequest) *http.Request {
	a := &struct {
		r http.Request
		u url.URL
	}{}
	a.r = *lc.tmpl
	a.u.Path = p.target
	if a.u.EscapedPath() != p.target {
		a.u.RawPath = p.target
	}
	if strings.IndexByte(p.target, '%') >= 0 {
		u, err := url.ParseRequestURI(p.target)
		if err != nil {
			return &http.Request{} // answered by a close, as net/http's 400 closes
		}
		a.u = *u
	}
	r := &a.r
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = p.method, &a.u, "HTTP/1.1", 1, 1
	r.Header, r.Host, r.RequestURI, r.RemoteAddr, r.Body = p.header, p.host, p.target, lc.remote, http.NoBody
	return r
}

// answer runs the handler chain for req and sends its answer; false closes the
// connection.
func (lc *leanConn) answer(req *http.Request) bool {
	if req.Method == "" {
		return false
	}
	// One writer per connection, reset for each answer (a handler may not use its
	// ResponseWriter or header after it returns).
	w := &lc.rw
	clear(w.header)
	*w = leanWriter{lc: lc, header: w.header, head: req.Method == http.MethodHead, body: lc.body[:0]}
	lc.ll.lean.Handler().ServeHTTP(w, req)
	return w.finish()
}

// leanWriter is the ResponseWriter of one answer: it buffers the answer and sends
// header and body with one write.
type leanWriter struct {
	lc        *leanConn
	header    http.Header
	status    int
	head      bool
	body      []byte
	streaming bool // past leanBuffer: the header is sent, the body goes straight out
	close     bool // the body is delimited by closing the connection
	failed    bool
}

func (w *leanWriter) Header() http.Header { return w.header }

func (w *leanWriter) WriteHeader(code int) {
	if w.status != 0 || code < 100 || code > 999 {
		return
	}
	w.status = code
}

func (w *leanWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed {
		return 0, net.ErrClosed
	}
	if w.streaming {
		if w.head {
			return len(p), nil
		}
		n, err := w.lc.c.Write(p)
		if err != nil {
			w.failed = true
		}
		return n, err
	}
	if len(w.body)+len(p) <= leanBuffer {
		w.body = append(w.body, p...)
		return len(p), nil
	}
	// Too large to buffer: send the header now and stream the rest.
	w.streaming = true
	if _, ok := w.header["Content-Length"]; !ok {
		w.close = true
	}
	if err := w.send(w.body, -1); err != nil {
		return 0, err
	}
	return w.Write(p)
}

// send writes the status line, the header and body (not for HEAD); contentLength is
// written when >= 0 and the header has none.
func (w *leanWriter) send(body []byte, contentLength int) error {
	out := w.lc.out[:0]
	if cap(out) < len(body)+512 {
		out = make([]byte, 0, len(body)+512)
	}
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(w.status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(w.status)...)
	out = append(out, "\r\n"...)
	for k, vs := range w.header {
		if !validHeaderName(k) {
			continue
		}
		for _, v := range vs {
			out = append(out, k...)
			out = append(out, ": "...)
			out = appendHeaderValue(out, v)
			out = append(out, "\r\n"...)
		}
	}
	if _, ok := w.header["Date"]; !ok {
		out = append(out, "Date: "...)
		out = append(out, httpDate()...)
		out = append(out, "\r\n"...)
	}
	if contentLength >= 0 && bodyAllowed(w.status) {
		if _, ok := w.header["Content-Length"]; !ok {
			out = append(out, "Content-Length: "...)
			out = strconv.AppendInt(out, int64(contentLength), 10)
			out = append(out, "\r\n"...)
		}
	}
	if _, ok := w.header["Content-Type"]; !ok && len(body) > 0 && bodyAllowed(w.status) {
		out = append(out, "Content-Type: "...)
		out = append(out, http.DetectContentType(body)...)
		out = append(out, "\r\n"...)
	}
	if w.close {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	if !w.head {
		out = append(out, body...)
	}
	_, err := w.lc.c.Write(out)
	if cap(out) <= 2*leanBuffer {
		w.lc.out = out[:0]
	}
	if err != nil {
		w.failed = true
	}
	return err
}

// finish sends a buffered answer; it reports whether the connection may carry another
// request.
func (w *leanWriter) finish() bool {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.streaming {
		return !w.close && !w.failed
	}
	if cap(w.body) <= leanBuffer {
		w.lc.body = w.body[:0] // room for the next answer
	}
	return w.send(w.body, len(w.body)) == nil && !w.close
}

// bodyAllowed is net/http's rule: no body for 1xx, 204 and 304.
func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199) && status != http.StatusNoContent && status != http.StatusNotModified
}

// appendHeaderValue appends v with CR and LF turned into spaces, as net/http does.
func appendHeaderValue(out []byte, v string) []byte {
	for i := range len(v) {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		out = append(out, c)
	}
	return out
}

// httpDate is the current time in HTTP's format, made at most once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &cachedDate{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	unix int64
	text string
}

var dateCache atomic.Pointer[cachedDate]

// handedConn is a connection handed to net/http: it reads first what the loop had
// read.
type handedConn struct {
	net.Conn
	buffered []byte
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.buffered) > 0 {
		n := copy(p, c.buffered)
		c.buffered = c.buffered[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// ReadFrom keeps net/http's sendfile path for the connection (large objects).
func (c *handedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

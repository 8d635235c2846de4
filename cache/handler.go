package cache

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/tuf"
)

// Gate decides whether an endpoint may have a target now. The appliance
// wires the rollout engine's serving gate (rings, windows, approvals) in;
// AllowAll is the default.
type Gate interface {
	// Admit is called for every target request after the target is known
	// to the verified metadata and before any byte is sent. When it allows
	// the request and done is not nil, the handler calls done exactly once,
	// after the response is written (or failed), with what it sent; done
	// must not block for long, since the request waits for it.
	Admit(ctx context.Context, req GateRequest) (d Decision, done func(Served))
}

// Served is what the handler sent for an admitted target request: the
// status and the body bytes really written, and whether they carried the
// target through its last byte.
type Served struct {
	// Status is the HTTP status sent.
	Status int
	// Bytes is the number of body bytes written.
	Bytes int64
	// Complete is true when a GET's body carried the target's end: a 200
	// with the whole target, or a single-range 206 whose range ends at the
	// target's last byte, every byte of it written. A resumed download is
	// complete when its last range is.
	Complete bool
}

// GateRequest describes a target request to the Gate.
type GateRequest struct {
	Repo   string
	Target tuf.TargetInfo
	// Remote is the requester's address (from the connection, not from
	// headers).
	Remote netip.AddrPort
	// Header is the request's header (agents identify themselves here).
	Header http.Header
	// TLS is the connection's TLS state, nil over plain http (client certificates).
	TLS *tls.ConnectionState
}

// Decision is a Gate's answer.
type Decision struct {
	Allow bool
	// Status is the HTTP status of a refusal (default 503).
	Status int
	// RetryAfter, when positive, is sent as Retry-After (whole seconds).
	RetryAfter time.Duration
	// Reason is a short plain-text message for the endpoint.
	Reason string
}

// AllowAll is the Gate that admits every request.
type AllowAll struct{}

// Admit implements Gate.
func (AllowAll) Admit(context.Context, GateRequest) (Decision, func(Served)) {
	return Decision{Allow: true}, nil
}

// ResponseShaper wraps the ResponseWriter of one target response, e.g. to
// cap bandwidth per site, segment and client (*Shaper implements it). Wrap
// returns the writer to serve through and a func called once the response
// is done. Without one, responses go straight from the file (sendfile).
type ResponseShaper interface {
	Wrap(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func())
}

// Handler serves endpoints:
//
//	GET /repos/{repo}/metadata/{file}   verified metadata, byte for byte
//	GET /repos/{repo}/targets/{path}    verified targets, with or without
//	                                    the consistent-snapshot hash prefix
//
// (HEAD too). Mount it at "/repos/". It is safe for concurrent use.
type Handler struct {
	Cache *Cache
	// Gate admits target requests (nil: AllowAll).
	Gate Gate
	// Shaper wraps target responses (nil: none).
	Shaper ResponseShaper
}

// RequestKind says what a request path names.
type RequestKind int

// Kinds of request paths.
const (
	KindMetadata RequestKind = iota + 1
	KindTarget
)

// Request is a parsed endpoint request path.
type Request struct {
	Kind RequestKind
	Repo string
	// Name is the unescaped metadata file name or target path.
	Name string
}

// ParseRequestPath parses an escaped URL path (r.URL.EscapedPath()) of the
// form /repos/REPO/metadata/FILE or /repos/REPO/targets/PATH. The metadata
// file is one escaped segment (delegated role names may contain "/", sent
// as %2F); the target path is unescaped segment by segment and must pass
// tuf.ParseTargetPath.
func ParseRequestPath(escaped string) (Request, error) {
	rest, ok := strings.CutPrefix(escaped, "/repos/")
	if !ok {
		return Request{}, errors.New("not under /repos/")
	}
	repo, rest, ok := strings.Cut(rest, "/")
	if !ok || repo == "" {
		return Request{}, errors.New("no repository")
	}
	repo, err := url.PathUnescape(repo)
	if err != nil || repo == "" || strings.ContainsAny(repo, "/\x00") {
		return Request{}, errors.New("bad repository name")
	}
	kind, rest, ok := strings.Cut(rest, "/")
	if !ok || rest == "" {
		return Request{}, errors.New("want metadata/FILE or targets/PATH")
	}
	switch kind {
	case "metadata":
		name, err := url.PathUnescape(rest)
		if err != nil {
			return Request{}, fmt.Errorf("bad metadata name: %w", err)
		}
		if _, err := tuf.ParseMetadataName(name); err != nil {
			return Request{}, err
		}
		return Request{Kind: KindMetadata, Repo: repo, Name: name}, nil
	case "targets":
		if !strings.Contains(rest, "%") {
			// Nothing escaped: the path is the name (no allocation).
			if _, err := tuf.ParseTargetPath(rest); err != nil {
				return Request{}, err
			}
			return Request{Kind: KindTarget, Repo: repo, Name: rest}, nil
		}
		segs := strings.Split(rest, "/")
		for i, s := range segs {
			u, err := url.PathUnescape(s)
			if err != nil || strings.Contains(u, "/") {
				return Request{}, errors.New("bad target path escaping")
			}
			segs[i] = u
		}
		name := strings.Join(segs, "/")
		if _, err := tuf.ParseTargetPath(name); err != nil {
			return Request{}, err
		}
		return Request{Kind: KindTarget, Repo: repo, Name: name}, nil
	}
	return Request{}, errors.New("want metadata/FILE or targets/PATH")
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "only GET and HEAD")
		return
	}
	req, err := ParseRequestPath(r.URL.EscapedPath())
	if err != nil {
		plain(w, http.StatusNotFound, "not found: "+err.Error())
		return
	}
	h.serve(w, r, req)
}

// ServeTarget answers r (GET or HEAD) with target name of repository repo exactly as
// GET /repos/REPO/targets/NAME would be answered — lookup, gate, shaper, counters,
// Range, If-Range — and returns the status sent (499: the client went away). It is the
// one serving path for callers that map other URLs onto targets (vendor host names).
func (h *Handler) ServeTarget(w http.ResponseWriter, r *http.Request, repo, name string) int {
	return h.serve(w, r, Request{Kind: KindTarget, Repo: repo, Name: name})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, req Request) int {
	c := h.Cache
	m, ok := c.mirrors[req.Repo]
	if !ok {
		c.met.requests.WithLabelValues("_other", kindLabel(req.Kind), "404").Inc()
		plain(w, http.StatusNotFound, fmt.Sprintf("unknown repository %q", req.Repo))
		return http.StatusNotFound
	}
	code := 0
	rm := c.met.repo(req.Repo)
	if req.Kind == KindMetadata {
		code = h.serveMetadata(w, r, m, req.Name)
		if code == http.StatusOK {
			rm.metadataOK.Inc()
			return code
		}
	} else {
		code = h.serveTarget(w, r, m, rm, req.Name)
		if code == http.StatusOK {
			rm.targetOK.Inc()
			return code
		}
	}
	c.met.requests.WithLabelValues(req.Repo, kindLabel(req.Kind), strconv.Itoa(code)).Inc()
	return code
}

func kindLabel(k RequestKind) string {
	if k == KindMetadata {
		return "metadata"
	}
	return "target"
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request, m *tuf.Mirror, name string) int {
	data, err := m.Metadata(r.Context(), name)
	if err != nil {
		return h.fail(w, r, m.Name(), name, err)
	}
	sum := sha256.Sum256(data)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	if n, _ := tuf.ParseMetadataName(name); n.Version > 0 {
		w.Header().Set("Cache-Control", "public, max-age=300")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	rec := newRecorder(w)
	http.ServeContent(rec, r, "", time.Time{}, bytes.NewReader(data))
	return rec.Code()
}

func (h *Handler) serveTarget(w http.ResponseWriter, r *http.Request, m *tuf.Mirror, rm *repoMetrics, name string) int {
	ti, ok := takeHint(r.Context(), m, name)
	if !ok {
		var err error
		if ti, err = lookupTarget(r.Context(), m, name); err != nil {
			return h.fail(w, r, m.Name(), name, err)
		}
	}
	status, ok, done := h.admit(w, r, m, ti)
	if !ok {
		return status
	}
	if done == nil {
		return h.serveAdmitted(w, r, m, rm, name, ti)
	}
	rec := newRecorder(w)
	status = h.serveAdmitted(rec, r, m, rm, name, ti)
	done(served(r, rec, status, ti.Length))
	return status
}

// served describes the response rec recorded; status is the handler's
// answer (499 when the client went away before one was written).
func served(r *http.Request, rec *recorder, status int, length int64) Served {
	s := Served{Status: status, Bytes: rec.Bytes()}
	if rec.Status() != 0 {
		s.Status = rec.Status()
	}
	if r.Method != http.MethodGet {
		return s
	}
	switch s.Status {
	case http.StatusOK:
		s.Complete = s.Bytes == length
	case http.StatusPartialContent:
		// bytes FIRST-LAST/TOTAL (a multipart answer has none: not complete)
		var first, last, total int64
		if _, err := fmt.Sscanf(rec.Header().Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err == nil {
			s.Complete = total == length && last == total-1 && s.Bytes == last-first+1
		}
	}
	return s
}

// serveAdmitted answers an admitted target request.
func (h *Handler) serveAdmitted(w http.ResponseWriter, r *http.Request, m *tuf.Mirror, rm *repoMetrics, name string, ti tuf.TargetInfo) int {
	c := h.Cache
	immutable := name != ti.Path
	if fullBody(r) {
		if it := c.memoryHit(m.Name(), ti); it != nil {
			return h.serveMemory(w, r, rm, it, immutable)
		}
	}
	obj, err := c.open(r.Context(), m, ti)
	if err != nil {
		return h.fail(w, r, m.Name(), name, err)
	}
	defer obj.Close()
	hdr := w.Header()
	hdr["Content-Type"] = octetStream
	hdr["X-Content-Type-Options"] = nosniff
	hdr["Etag"] = []string{`"` + obj.Key + `"`}
	hdr["Cache-Control"] = cacheControl(immutable)
	var out http.ResponseWriter = w
	if h.Shaper != nil {
		var done func()
		out, done = h.Shaper.Wrap(w, r)
		defer done()
	}
	rec := newRecorder(out)
	if obj.File != nil {
		http.ServeContent(rec, r, "", time.Time{}, obj.File)
	} else {
		http.ServeContent(rec, r, "", time.Time{}, bytes.NewReader(obj.Data))
	}
	rm.served.Add(float64(rec.Bytes()))
	return rec.Code()
}

// admit asks the gate; when it refuses, admit answers and returns the
// status. When it allows, done is the gate's callback for the response (may
// be nil). The default gate (nil or AllowAll) costs nothing.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, m *tuf.Mirror, ti tuf.TargetInfo) (int, bool, func(Served)) {
	switch h.Gate.(type) {
	case nil, AllowAll:
		return 0, true, nil
	}
	gr := GateRequest{Repo: m.Name(), Target: ti, Header: r.Header, TLS: r.TLS}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		gr.Remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	d, done := h.Gate.Admit(r.Context(), gr)
	if d.Allow {
		return 0, true, done
	}
	h.Cache.met.refusals.WithLabelValues(m.Name()).Inc()
	status := d.Status
	if status < 400 || status > 599 {
		status = http.StatusServiceUnavailable
	}
	if d.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((d.RetryAfter+time.Second-1)/time.Second), 10))
	}
	plain(w, status, cmp.Or(d.Reason, "not now"))
	return status, false, nil
}

// Header values shared by every target response; never written to (a
// handler that changes a header replaces the map entry).
var (
	octetStream    = []string{"application/octet-stream"}
	nosniff        = []string{"nosniff"}
	acceptRanges   = []string{"bytes"}
	noCache        = []string{"no-cache"}
	immutableCache = []string{"public, max-age=31536000, immutable"}
)

// cacheControl: a hash-prefixed name never changes its bytes; a plain
// path may move to new bytes with the next metadata.
func cacheControl(immutable bool) []string {
	if immutable {
		return immutableCache
	}
	return noCache
}

// fullBody reports whether the answer to r is the whole body with status
// 200 whatever the object: no Range and no precondition http.ServeContent
// would act on (If-Modified-Since and If-Unmodified-Since are ignored for
// objects without a modification time; If-Range only matters with Range).
func fullBody(r *http.Request) bool {
	h := r.Header
	return len(h["Range"]) == 0 && len(h["If-None-Match"]) == 0 && len(h["If-Match"]) == 0
}

// serveMemory answers a full-body request from an object's verified memory
// copy with what http.ServeContent would send, minus its work: headers
// computed once per object, Content-Length set up front and the body in one
// Write, so net/http sends headers and body together (one write syscall
// when they fit its 4 KiB connection buffer, at most two for 4 KiB bodies).
func (h *Handler) serveMemory(w http.ResponseWriter, r *http.Request, rm *repoMetrics, it *smallItem, immutable bool) int {
	hdr := w.Header()
	hdr["Content-Type"] = octetStream
	hdr["X-Content-Type-Options"] = nosniff
	hdr["Etag"] = it.etag
	hdr["Cache-Control"] = cacheControl(immutable)
	hdr["Accept-Ranges"] = acceptRanges
	hdr["Content-Length"] = it.length
	out := w
	if h.Shaper != nil {
		var done func()
		out, done = h.Shaper.Wrap(w, r)
		defer done()
	}
	out.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return http.StatusOK
	}
	n, _ := out.Write(it.data) // a failed write is the client gone; nothing to answer
	rm.served.Add(float64(n))
	return http.StatusOK
}

// lookupTarget resolves a requested name: the path as listed, else a
// consistent-snapshot name "dir/HASH.base" whose HASH is one of the listed
// digests of "dir/base".
func lookupTarget(ctx context.Context, m *tuf.Mirror, name string) (tuf.TargetInfo, error) {
	ti, err := m.Target(ctx, name)
	if err == nil || !errors.Is(err, tuf.ErrNotFound) {
		return ti, err
	}
	tn, perr := tuf.ParseTargetPath(name)
	if perr != nil || tn.Hash == "" {
		return ti, err
	}
	ti2, err2 := m.Target(ctx, tn.Path)
	if err2 != nil {
		if errors.Is(err2, tuf.ErrNotFound) {
			return ti, err
		}
		return ti2, err2
	}
	for _, h := range ti2.Hashes {
		if h.String() == tn.Hash {
			return ti2, nil
		}
	}
	return ti, fmt.Errorf("%s: %w (no listed hash is %s)", tn.Path, tuf.ErrNotFound, tn.Hash)
}

// fail answers an error: 404 for what verified metadata does not list, 503
// for expired metadata, 504 for an upstream timeout, 502 for any other
// upstream failure (including bytes that failed verification).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, repo, name string, err error) int {
	status, msg := http.StatusBadGateway, ""
	switch {
	case errors.Is(err, tuf.ErrNotFound):
		status, msg = http.StatusNotFound, fmt.Sprintf("repository %s has no %s", repo, name)
	case errors.Is(err, tuf.ErrExpired):
		status, msg = http.StatusServiceUnavailable, fmt.Sprintf("repository %s: verified metadata expired and the upstream cannot be refreshed", repo)
		w.Header().Set("Retry-After", "60")
	case errors.Is(err, ErrVerification):
		msg = fmt.Sprintf("repository %s: the upstream sent bytes for %s that do not match its verified metadata", repo, name)
	case isTimeout(err):
		status, msg = http.StatusGatewayTimeout, fmt.Sprintf("repository %s: the upstream timed out", repo)
	case errors.Is(err, tuf.ErrNoMetadata):
		msg = fmt.Sprintf("repository %s: no verified metadata yet; the upstream is unreachable or refused", repo)
	case errors.Is(err, tuf.ErrRoleUnavailable):
		msg = fmt.Sprintf("repository %s: the delegated role listing %s did not verify", repo, name)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return 499 // the client went away; nothing to answer
	default:
		msg = fmt.Sprintf("repository %s: the upstream failed for %s", repo, name)
	}
	if status >= 500 {
		if ok, suppressed := h.Cache.failLogs.allow(repo, h.Cache.clock.Now()); ok {
			h.Cache.log.Warn("request failed", "repo", repo, "name", name, "status", status, "err", err, "suppressed_before", suppressed)
		}
	}
	plain(w, status, msg)
	return status
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// logLimiter lets one log line per key through every interval and counts the
// ones it holds back, so an upstream outage does not flood the journal with a
// line per endpoint request.
type logLimiter struct {
	interval time.Duration

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// allow reports whether to log for key now, and how many lines were held
// back since the last one.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.interval {
		l.held[key]++
		return false, 0
	}
	n := l.held[key]
	l.last[key], l.held[key] = now, 0
	return true, n
}

// Small reports whether a GET or HEAD of the escaped path would be answered from an
// object held in memory, without counting anything or changing what is held: Lean
// answers those on its own loop.
func (h *Handler) Small(ctx context.Context, escapedPath string) bool {
	req, err := ParseRequestPath(escapedPath)
	if err != nil || req.Kind != KindTarget {
		return false
	}
	c := h.Cache
	m, ok := c.mirrors[req.Repo]
	if !ok {
		return false
	}
	ti, err := lookupTarget(ctx, m, req.Name)
	if err != nil {
		return false
	}
	sum, ok := ti.Hashes["sha256"]
	if !ok || len(sum) != sha256.Size || ti.Length > c.cfg.MemoryObjectBytes || !c.small.has(sum, ti.Length) {
		return false
	}
	if hint, ok := ctx.Value(smallHintKey{}).(*smallHint); ok {
		*hint = smallHint{m: m, name: req.Name, ti: ti}
	}
	return true
}

// smallHint is the target Small found, kept for the request it was asked for (the
// Lean loop's connection context carries one): the handler then skips a second walk
// of the metadata for the same name, microseconds later.
type smallHint struct {
	m    *tuf.Mirror
	name string
	ti   tuf.TargetInfo
}

type smallHintKey struct{}

// takeHint returns and clears the target Small found for name of m on ctx's
// connection, if any.
func takeHint(ctx context.Context, m *tuf.Mirror, name string) (tuf.TargetInfo, bool) {
	hint, ok := ctx.Value(smallHintKey{}).(*smallHint)
	if !ok || hint.m != m || hint.name != name {
		return tuf.TargetInfo{}, false
	}
	ti := hint.ti
	*hint = smallHint{}
	return ti, true
}

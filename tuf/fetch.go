package tuf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/clock"
)

// NewHTTPClient returns the HTTP client a Mirror uses by default: bounded
// dial, TLS and response-header timeouts, proxies from the environment, and no
// overall timeout (target bodies may be large; callers bound them with ctx and
// the stall timeout).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
}

// NewGetRequest is an upstream GET of url as the appliance makes them: with userAgent
// (when set) and, for an offset above 0, a Range resuming a partial download there.
func NewGetRequest(ctx context.Context, url, userAgent string, offset int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	return req, nil
}

// transport is the upstream side of a Mirror: its client and retry policy.
type transport struct {
	client          *http.Client
	clock           clock.Clock
	retries         int
	backoff         time.Duration
	metadataTimeout time.Duration
	userAgent       string
}

// retryable reports whether a failed GET may succeed if tried again.
func retryable(err error) bool {
	var he *metadata.ErrDownloadHTTP
	if errors.As(err, &he) {
		return he.StatusCode >= 500 || he.StatusCode == http.StatusTooManyRequests || he.StatusCode == http.StatusRequestTimeout
	}
	var le *metadata.ErrDownloadLengthMismatch
	return !errors.As(err, &le) && !errors.Is(err, context.Canceled)
}

// wait sleeps d on the transport's clock or until ctx is done.
func (t *transport) wait(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.clock.After(d):
		return nil
	}
}

// getBytes downloads url, at most maxLength bytes, retrying transient
// failures. Non-200 answers are *metadata.ErrDownloadHTTP (go-tuf stops its
// root walk on a 404) and oversize bodies *metadata.ErrDownloadLengthMismatch.
func (t *transport) getBytes(ctx context.Context, url string, maxLength int64) ([]byte, error) {
	var err error
	for attempt := 0; ; attempt++ {
		var data []byte
		data, err = t.getOnce(ctx, url, maxLength)
		if err == nil {
			return data, nil
		}
		if attempt >= t.retries || !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if werr := t.wait(ctx, t.backoff<<attempt); werr != nil {
			return nil, err
		}
	}
}

func (t *transport) getOnce(ctx context.Context, url string, maxLength int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.metadataTimeout)
	defer cancel()
	return GetMetadata(ctx, t.client, url, t.userAgent, maxLength)
}

// GetMetadata downloads a metadata file once, as go-tuf's fetcher must: at most
// maxLength bytes (a larger body, announced or sent, is *metadata.ErrDownloadLengthMismatch)
// and any answer but 200 a *metadata.ErrDownloadHTTP (go-tuf ends its root walk on a
// 404). The mirror retries it; the agent's fetcher calls it on its own client.
func GetMetadata(ctx context.Context, client *http.Client, url, userAgent string, maxLength int64) ([]byte, error) {
	req, err := NewGetRequest(ctx, url, userAgent, 0)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("download %s: length %d is larger than the limit %d", url, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("download %s: more than the limit of %d bytes", url, maxLength)}
	}
	return data, nil
}

// refreshFetcher adapts go-tuf's context-less fetcher.Fetcher interface to
// the transport. It lives for one Refresh call only, which is why it holds
// that call's ctx. It records the root versions it downloads, so the Mirror
// can keep (and serve) the whole verified root chain.
type refreshFetcher struct {
	ctx context.Context
	t   *transport

	mu    sync.Mutex
	roots map[int64][]byte
}

// DownloadFile implements fetcher.Fetcher.
func (f *refreshFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	data, err := f.t.getBytes(f.ctx, url, maxLength)
	if err != nil {
		return nil, err
	}
	base := url[strings.LastIndexByte(url, '/')+1:]
	if n, perr := ParseMetadataName(base); perr == nil && n.Role == metadata.ROOT && n.Version > 0 {
		f.mu.Lock()
		f.roots[n.Version] = data
		f.mu.Unlock()
	}
	return data, nil
}

// TargetBody is an upstream response carrying a target's bytes from Offset
// on. The bytes are NOT verified: stream them through a [Verifier].
type TargetBody struct {
	io.ReadCloser
	// Offset is where the body starts in the target: the requested offset
	// when the upstream honoured the Range request, else 0.
	Offset int64
	// URL is the upstream address the bytes come from.
	URL string
}

// ErrUpstreamStatus is returned (wrapped) by OpenTarget when the upstream
// answered with a status other than 200 or 206.
var ErrUpstreamStatus = errors.New("upstream status")

// openTarget GETs one of urls (the first that is not 404) from offset on.
func (t *transport) openTarget(ctx context.Context, urls []string, offset, length int64) (*TargetBody, error) {
	var lastErr error
	for _, u := range urls {
		body, err := t.openOnce(ctx, u, offset, length)
		if err == nil {
			return body, nil
		}
		lastErr = err
		var he *metadata.ErrDownloadHTTP
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			break
		}
	}
	return nil, lastErr
}

func (t *transport) openOnce(ctx context.Context, url string, offset, length int64) (*TargetBody, error) {
	req, err := NewGetRequest(ctx, url, t.userAgent, offset)
	if err != nil {
		return nil, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return &TargetBody{ReadCloser: resp.Body, URL: url}, nil
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"), length)
		if !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("get %s: Content-Range %q does not start at %d", url, resp.Header.Get("Content-Range"), offset)
		}
		return &TargetBody{ReadCloser: resp.Body, Offset: offset, URL: url}, nil
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: %w %d: %w", url, ErrUpstreamStatus, resp.StatusCode, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url})
	}
}

// contentRangeStart parses "bytes START-END/SIZE" and returns START when SIZE
// is the expected length (or "*").
func contentRangeStart(h string, length int64) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	if size != "*" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n != length {
			return 0, false
		}
	}
	startS, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, false
	}
	start, err := strconv.ParseInt(startS, 10, 64)
	if err != nil || start < 0 {
		return 0, false
	}
	return start, true
}

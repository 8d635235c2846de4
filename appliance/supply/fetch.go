package supply

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/tuf"
)

// fetcher downloads from vendors: bounded in bytes (the caller's context bounds the
// time), refusing HTML pages where a file is expected, resuming with Range.
type fetcher struct {
	client    *http.Client
	pace      func(ctx context.Context, r io.Reader) io.Reader // may be nil
	userAgent string
}

// maxAttempts is how many GETs one download may take, each resuming where the last
// broke off.
const maxAttempts = 3

func (f *fetcher) get(ctx context.Context, url string, offset int64) (*http.Response, error) {
	req, err := tuf.NewGetRequest(ctx, url, f.userAgent, offset)
	if err != nil {
		return nil, reject(reasonMalformed, "bad URL %q: %v", url, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		return nil, reject(reasonNetwork, "get %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, reject(reasonStatus, "get %s: status %d", url, resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/html" || ct == "application/xhtml+xml" {
		resp.Body.Close()
		return nil, reject(reasonHTML, "get %s: an HTML page (%s) where a file was expected", url, ct)
	}
	return resp, nil
}

// ctxErr is the error of a check whose context ended: its cause when the timeout cut it.
func ctxErr(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil {
		return c
	}
	return ctx.Err()
}

// getBytes reads a small file (a checksum file, signature, InRelease) whole, refusing
// more than limit bytes.
func (f *fetcher) getBytes(ctx context.Context, url string, limit int64) ([]byte, error) {
	resp, err := f.get(ctx, url, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var src io.Reader = resp.Body
	if f.pace != nil {
		src = f.pace(ctx, src)
	}
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		return nil, reject(reasonNetwork, "get %s: %v", url, err)
	}
	if int64(len(b)) > limit {
		return nil, reject(reasonTooLarge, "get %s: more than %d bytes", url, limit)
	}
	if looksLikeHTML(b[:min(len(b), 512)]) {
		return nil, reject(reasonHTML, "get %s: an HTML page where a file was expected", url)
	}
	return b, nil
}

// fetched is a downloaded file: where its bytes are and their hashes.
type fetched struct {
	path           string
	size           int64
	sha256, sha512 string
}

// download streams url into the file at part, resuming from what part already holds
// (an earlier attempt or check) with a Range request; a server that answers 200 to it
// restarts the file. size >= 0 is the exact length the vendor stated; otherwise at most
// limit bytes are taken. It checks sizes only: the caller checks the hashes.
func (f *fetcher) download(ctx context.Context, url, part string, size, limit int64) (*fetched, error) {
	if size >= 0 {
		limit = size
	}
	file, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, reject(reasonLocal, "download %s: %v", url, err)
	}
	defer file.Close()
	h256, h512 := sha256.New(), sha512.New()
	offset, err := rehash(file, limit, h256, h512)
	if err != nil {
		return nil, reject(reasonLocal, "download %s: %v", url, err)
	}
	var last error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if size >= 0 && offset == size {
			break
		}
		var done bool
		offset, done, last = f.attempt(ctx, url, file, offset, limit, h256, h512)
		if done || last != nil && (ctx.Err() != nil || reasonOf(last) != reasonNetwork) {
			break
		}
	}
	if last != nil {
		return nil, last
	}
	if size >= 0 && offset != size {
		return nil, reject(reasonSize, "get %s: %d bytes, the vendor states %d", url, offset, size)
	}
	if err := file.Sync(); err != nil {
		return nil, reject(reasonLocal, "download %s: %v", url, err)
	}
	return &fetched{path: part, size: offset, sha256: hex.EncodeToString(h256.Sum(nil)), sha512: hex.EncodeToString(h512.Sum(nil))}, nil
}

// rehash feeds what part already holds to the hashers and returns its length, or
// empties it when it holds more than limit.
func rehash(file *os.File, limit int64, hs ...hash.Hash) (int64, error) {
	n, err := io.Copy(io.MultiWriter(asWriters(hs)...), file)
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, restart(file, hs...)
	}
	return n, nil
}

func asWriters(hs []hash.Hash) []io.Writer {
	ws := make([]io.Writer, len(hs))
	for i, h := range hs {
		ws[i] = h
	}
	return ws
}

func restart(file *os.File, hs ...hash.Hash) error {
	for _, h := range hs {
		h.Reset()
	}
	if err := file.Truncate(0); err != nil {
		return err
	}
	_, err := file.Seek(0, io.SeekStart)
	return err
}

// attempt runs one GET from offset on. done reports the body ended normally.
func (f *fetcher) attempt(ctx context.Context, url string, file *os.File, offset, limit int64, h256, h512 hash.Hash) (int64, bool, error) {
	resp, err := f.get(ctx, url, offset)
	if err != nil {
		return offset, false, err
	}
	defer resp.Body.Close()
	if offset > 0 {
		start, ok := rangeStart(resp.Header.Get("Content-Range"))
		switch {
		case resp.StatusCode == http.StatusPartialContent && ok && start == offset:
		case resp.StatusCode == http.StatusOK: // no ranges here: start over
			if err := restart(file, h256, h512); err != nil {
				return 0, false, reject(reasonLocal, "download %s: %v", url, err)
			}
			offset = 0
		default:
			return offset, false, reject(reasonStatus, "get %s: Content-Range %q does not start at %d", url, resp.Header.Get("Content-Range"), offset)
		}
	}
	var src io.Reader = resp.Body
	if f.pace != nil {
		src = f.pace(ctx, src)
	}
	buf := make([]byte, 128<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if offset == 0 && looksLikeHTML(buf[:min(n, 512)]) {
				return offset, false, reject(reasonHTML, "get %s: an HTML page where a file was expected", url)
			}
			if offset+int64(n) > limit {
				return offset, false, reject(reasonTooLarge, "get %s: more than %d bytes", url, limit)
			}
			if _, err := file.Write(buf[:n]); err != nil {
				return offset, false, reject(reasonLocal, "download %s: %v", url, err)
			}
			h256.Write(buf[:n])
			h512.Write(buf[:n])
			offset += int64(n)
		}
		if rerr == io.EOF {
			return offset, true, nil
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return offset, false, ctxErr(ctx)
			}
			return offset, false, reject(reasonNetwork, "get %s: %v", url, rerr)
		}
	}
}

// rangeStart parses the START of "bytes START-END/SIZE".
func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(s, 10, 64)
	return n, ok && err == nil && n >= 0
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/tuf"
)

// waitError says the appliance asked to come back later (503 + Retry-After, or a
// 409 with retry_after_seconds).
type waitError struct {
	op    string
	after time.Duration
}

func (e *waitError) Error() string {
	return fmt.Sprintf("agent: %s: not now, retry after %s", e.op, e.after)
}

// ErrDiskFull means the disk filled up while a download was written; what was
// fetched is kept and resumed once there is room.
var ErrDiskFull = errors.New("the disk is full")

// Resuming a dropped download: this many tries per round, after resumeBackoff,
// doubling, each jittered.
const (
	resumeAttempts = 4
	resumeBackoff  = 2 * time.Second
)

// jitter is d ± 50%, so agents that lost the same VPN do not come back in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// fileWriter counts write errors apart from read errors of the body, and tells a
// full disk from other trouble.
type fileWriter struct {
	w   io.Writer
	err error
}

func (f *fileWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		f.err = err
	}
	return n, err
}

// ErrVerification means downloaded bytes did not match the TUF metadata; the bytes are
// thrown away.
var ErrVerification = errors.New("target does not match its TUF metadata")

// fileKey names a verified target in the download directory: its sha256 (else sha512)
// and a tidy version of its base name, so that installers that care about extensions
// (.deb, .msi, .pkg) see the right one.
func fileKey(ti tuf.TargetInfo) string {
	digest := ""
	for _, alg := range []string{"sha256", "sha512"} {
		if h, ok := ti.Hashes[alg]; ok {
			digest = h.String()
			break
		}
	}
	base := ti.Path[strings.LastIndexByte(ti.Path, '/')+1:]
	base = unsafeChars.ReplaceAllString(base, "_")
	if len(base) > 100 {
		base = base[len(base)-100:]
	}
	return digest + "-" + base
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

func (a *Agent) downloadDir() string { return filepath.Join(a.cfg.StateDir, "downloads") }

// download fetches one target through the appliance into dir and returns the path of
// the verified file. A partial file from an earlier attempt is resumed with Range
// (its bytes are hashed again first); a 503 returns a *waitError and keeps what was
// fetched. Bytes that fail verification are deleted and ErrVerification returned.
func (a *Agent) download(ctx context.Context, rawURL string, ti tuf.TargetInfo) (string, error) {
	dir := a.downloadDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	final := filepath.Join(dir, fileKey(ti))
	if ok, err := verifyFile(final, ti); err == nil && ok {
		return final, nil
	}
	os.Remove(final)
	part := final + ".part"
	// A few resumes when the connection drops mid-way (a VPN from home), after a
	// jittered back-off; a 503 waits as long as it says.
	var lastErr error
	for attempt := 0; attempt < resumeAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-a.clock.After(jitter(resumeBackoff << (attempt - 1))):
			}
		}
		done, progressed, err := a.fetchInto(ctx, rawURL, part, ti)
		if done {
			if err := os.Rename(part, final); err != nil {
				return "", fmt.Errorf("agent: download %s: %w", ti.Path, err)
			}
			return final, nil
		}
		lastErr = err
		var we *waitError
		if errors.As(err, &we) || errors.Is(err, ErrVerification) || errors.Is(err, ErrDiskFull) || ctx.Err() != nil || !progressed {
			break
		}
	}
	return "", lastErr
}

// fetchInto GETs the rest of the target into part. done means part now holds exactly
// the verified target; progressed means bytes arrived (worth resuming at once).
func (a *Agent) fetchInto(ctx context.Context, rawURL, part string, ti tuf.TargetInfo) (done, progressed bool, err error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, false, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	defer f.Close()
	v, err := tuf.NewVerifier(ti)
	if err != nil {
		return false, false, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	// Hash what an earlier attempt fetched; more than the whole target starts over.
	have, err := io.Copy(v, io.LimitReader(f, ti.Length+1))
	if err != nil || have > ti.Length {
		if err := restart(f); err != nil {
			return false, false, err
		}
		v, _ = tuf.NewVerifier(ti)
		have = 0
	}
	if have == ti.Length {
		return a.finish(f, part, v, ti)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.client.resolve(rawURL), nil)
	if err != nil {
		return false, false, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.credential())
	req.Header.Set("User-Agent", a.client.userAgent)
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := a.client.http.Do(req)
	if err != nil {
		return false, false, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0 && contentRangeStart(resp.Header.Get("Content-Range")) == have:
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the Range was ignored: the body is the whole target
			if err := restart(f); err != nil {
				return false, false, err
			}
			v, _ = tuf.NewVerifier(ti)
		}
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		ae := apiError("download "+ti.Path, resp, data)
		after := ae.RetryAfter
		if after <= 0 {
			after = time.Minute
		}
		return false, false, &waitError{op: ae.Error(), after: after}
	default:
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, false, apiError("download "+ti.Path, resp, data)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return false, false, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	// The verifier refuses bytes past the length; reading one more than needed
	// detects an over-long body.
	start := v.Written()
	rest := ti.Length - start
	var w io.Writer = f
	if a.dlWriter != nil {
		w = a.dlWriter(f)
	}
	fw := &fileWriter{w: w}
	n, err := io.Copy(io.MultiWriter(v, fw), io.LimitReader(resp.Body, rest+1))
	if fw.err != nil && isDiskFull(fw.err) {
		f.Truncate(start + n) // keep what was written whole; the verifier saw more
		f.Sync()
		return false, false, fmt.Errorf("agent: download %s: %w after %d of %d bytes: %v", ti.Path, ErrDiskFull, start+n, ti.Length, fw.err)
	}
	if errors.Is(err, tuf.ErrTooLong) {
		os.Remove(part)
		return false, true, fmt.Errorf("agent: download %s: %w: %v", ti.Path, ErrVerification, err)
	}
	if err != nil {
		f.Sync()
		return false, n > 0, fmt.Errorf("agent: download %s: after %d bytes: %w", ti.Path, v.Written(), err)
	}
	if v.Written() < ti.Length {
		f.Sync()
		return false, n > 0, fmt.Errorf("agent: download %s: body ended after %d of %d bytes", ti.Path, v.Written(), ti.Length)
	}
	return a.finish(f, part, v, ti)
}

// finish checks the hashes of a complete part file.
func (a *Agent) finish(f *os.File, part string, v *tuf.Verifier, ti tuf.TargetInfo) (bool, bool, error) {
	if err := v.Verify(); err != nil {
		f.Close()
		os.Remove(part)
		return false, true, fmt.Errorf("agent: download %s: %w: %v", ti.Path, ErrVerification, err)
	}
	if err := f.Sync(); err != nil {
		return false, true, fmt.Errorf("agent: download %s: %w", ti.Path, err)
	}
	return true, true, nil
}

func restart(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("agent: download: %w", err)
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// contentRangeStart returns FIRST of "bytes FIRST-LAST/LENGTH", or -1.
func contentRangeStart(h string) int64 {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return -1
	}
	first, _, ok := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if !ok || err != nil {
		return -1
	}
	return n
}

// verifyFile reports whether path holds exactly the target.
func verifyFile(path string, ti tuf.TargetInfo) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	v, err := tuf.NewVerifier(ti)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(v, io.LimitReader(f, ti.Length+1)); err != nil {
		return false, nil
	}
	return v.Verify() == nil, nil
}

package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/patchgate/patchgate/tuf"
)

// download streams ti from the upstream into a temp file through a
// tuf.Verifier, resuming with Range after a broken or stalled attempt, and
// commits it to the store only when the exact length and every listed hash
// matched. It returns the object's key.
func (c *Cache) download(ctx context.Context, m *tuf.Mirror, ti tuf.TargetInfo) (key string, err error) {
	repo := m.Name()
	if k, ok := c.keyOf(ti); ok {
		if _, ok := c.store.lookup(k, c.clock.Now(), repo, ti.Path); ok {
			return k, nil
		}
	}
	result := "error"
	defer func() { c.met.fetches.WithLabelValues(repo, result).Inc() }()
	f, err := os.CreateTemp(c.store.tmpDir(), "fetch-*")
	if err != nil {
		return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	v, err := tuf.NewVerifier(ti)
	if err != nil {
		return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, err)
	}
	// The whole download, back-off included, ends by DownloadDeadline.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-ctx.Done():
		case <-c.clock.After(c.cfg.DownloadDeadline):
			cancel(&upstreamTimeout{reason: reasonDeadline, msg: fmt.Sprintf("no verified download within %s", c.cfg.DownloadDeadline)})
		}
	}()
	buf := make([]byte, 256<<10)
	failures := 0
	var high int64 // the most bytes verified so far, over every attempt
	for {
		began := c.clock.Now()
		aerr := c.attempt(ctx, m, ti, f, &v, buf)
		if aerr == nil {
			break
		}
		if errors.Is(aerr, tuf.ErrTooLong) {
			result = "verify_failed"
			c.met.verifyFailures.WithLabelValues(repo).Inc()
			c.integrity(IntegrityEvent{Kind: IntegrityUpstreamRejected, Repo: repo, Path: ti.Path, Detail: aerr.Error()})
			return "", fmt.Errorf("cache: fetch %s/%s: %w: %w", repo, ti.Path, ErrVerification, aerr)
		}
		if errors.Is(aerr, errFatal) {
			return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, aerr)
		}
		if ctx.Err() != nil {
			return "", c.stopped(ctx, repo, ti)
		}
		gained := v.Written() - high
		high = max(high, v.Written())
		if c.progressed(gained, c.clock.Now().Sub(began)) {
			failures = 0
		} else {
			failures++
		}
		if failures >= c.cfg.MaxAttempts {
			return "", c.upstreamFailed(repo, ti, fmt.Errorf("%d attempts in a row without new verified progress: %w", failures, aerr))
		}
		select {
		case <-ctx.Done():
			return "", c.stopped(ctx, repo, ti)
		case <-c.clock.After(c.cfg.RetryBackoff << min(failures, 6)):
		}
	}
	if err := v.Verify(); err != nil {
		result = "verify_failed"
		c.met.verifyFailures.WithLabelValues(repo).Inc()
		c.integrity(IntegrityEvent{Kind: IntegrityUpstreamRejected, Repo: repo, Path: ti.Path, Detail: err.Error()})
		return "", fmt.Errorf("cache: fetch %s/%s: %w: %w", repo, ti.Path, ErrVerification, err)
	}
	key = v.Sum256()
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("cache: fetch %s/%s: fsync: %w", repo, ti.Path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, err)
	}
	f = nil
	if err := c.store.commit(tmp, key, ti.Length, c.clock.Now(), repo, ti.Path); err != nil {
		return "", fmt.Errorf("cache: fetch %s/%s: store: %w", repo, ti.Path, err)
	}
	if _, ok := ti.SHA256(); !ok {
		c.mu.Lock()
		for _, a := range aliasNames(ti) {
			c.aliases[a] = key
		}
		c.mu.Unlock()
	}
	result = "ok"
	c.evict(key)
	return key, nil
}

// errFatal marks attempt errors that retrying cannot fix (local disk).
var errFatal = errors.New("fatal")

// errShortBody is an upstream body that ended before the verified length.
var errShortBody = errors.New("upstream body ended early")

// progressed reports whether an attempt that lasted d and did not finish
// still counts as progress: it added new verified bytes (beyond the most
// any attempt verified before) at MinRate or better.
func (c *Cache) progressed(gained int64, d time.Duration) bool {
	if gained <= 0 {
		return false
	}
	return c.cfg.MinRate <= 0 || float64(gained) >= float64(c.cfg.MinRate)*d.Seconds()
}

// stopped is the error of a download whose context ended: Close (or the
// requester, for downloads not detached), or the download deadline, which
// is reported as an upstream failure.
func (c *Cache) stopped(ctx context.Context, repo string, ti tuf.TargetInfo) error {
	var ut *upstreamTimeout
	if cause := context.Cause(ctx); errors.As(cause, &ut) {
		return c.upstreamFailed(repo, ti, ut)
	}
	return fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, ctx.Err())
}

// upstreamFailed counts, reports (OnIntegrity) and returns a download given
// up on because the upstream did not deliver.
func (c *Cache) upstreamFailed(repo string, ti tuf.TargetInfo, err error) error {
	reason := failureReason(err)
	c.met.upstreamFailures.WithLabelValues(repo, reason).Inc()
	c.integrity(IntegrityEvent{Kind: IntegrityUpstreamFailed, Repo: repo, Path: ti.Path, Reason: reason, Detail: err.Error()})
	return fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, err)
}

// Reasons of IntegrityUpstreamFailed events (and the reason label of
// patchgate_cache_upstream_failures_total).
const (
	reasonDeadline  = "deadline"   // DownloadDeadline passed
	reasonStalled   = "stalled"    // last attempt: nothing for StallTimeout
	reasonTooSlow   = "too_slow"   // last attempt: below MinRate over MinRateWindow
	reasonShortBody = "short_body" // last attempt: the body ended before the verified length
	reasonStatus    = "status"     // last attempt: an HTTP status other than 200/206
	reasonError     = "error"      // last attempt: anything else (connection refused, reset...)
)

// failureReason names why a download was given up, from its last error.
func failureReason(err error) string {
	var ut *upstreamTimeout
	switch {
	case errors.As(err, &ut):
		return ut.reason
	case errors.Is(err, tuf.ErrUpstreamStatus):
		return reasonStatus
	case errors.Is(err, errShortBody), errors.Is(err, io.ErrUnexpectedEOF):
		return reasonShortBody
	}
	return reasonError
}

// attempt runs one upstream GET from the verifier's position on, appending
// to f. It returns nil once the whole verified length arrived (Verify then
// checks the hashes). A body that ignored the Range restarts the file and
// the verifier from zero. A watchdog (see watch) cuts an attempt that
// stalls or is too slow; its error is then an *upstreamTimeout.
func (c *Cache) attempt(ctx context.Context, m *tuf.Mirror, ti tuf.TargetInfo, f *os.File, vp **tuf.Verifier, buf []byte) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var progress atomic.Int64
	go c.watch(ctx, cancel, &progress)
	defer func() {
		var ut *upstreamTimeout
		if cause := context.Cause(ctx); err != nil && errors.As(cause, &ut) && ut.reason != reasonDeadline {
			err = ut
		}
	}()
	v := *vp
	offset := v.Written()
	body, err := m.OpenTarget(ctx, ti, offset)
	if err != nil {
		return err
	}
	defer body.Close()
	if offset > 0 {
		if body.Offset == offset {
			c.met.resumes.WithLabelValues(m.Name()).Inc()
		} else {
			// The upstream sent the whole file again: start over.
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("%w: %w", errFatal, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("%w: %w", errFatal, err)
			}
			nv, err := tuf.NewVerifier(ti)
			if err != nil {
				return fmt.Errorf("%w: %w", errFatal, err)
			}
			*vp, v = nv, nv
		}
	}
	upstreamBytes := c.met.upstreamBytes.WithLabelValues(m.Name())
	var src io.Reader = body
	if c.pacer != nil {
		src = c.pacer.UpstreamReader(ctx, body)
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			progress.Add(int64(n))
			upstreamBytes.Add(float64(n))
			// The verifier first: it refuses the first byte past the
			// verified length, which then never reaches the file.
			if _, err := v.Write(buf[:n]); err != nil {
				return err
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("%w: write: %w", errFatal, err)
			}
		}
		if rerr == io.EOF {
			if v.Written() < ti.Length {
				return fmt.Errorf("%w at %d of %d bytes", errShortBody, v.Written(), ti.Length)
			}
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// watch cancels an attempt, with an *upstreamTimeout as the cause, once no
// byte arrived for StallTimeout or fewer than MinRate bytes a second
// arrived over the last MinRateWindow (a sliding window). It samples the
// attempt's progress on the cache's clock every quarter of the shorter of
// the two, from before the request is sent, so an upstream that never
// answers is cut too.
func (c *Cache) watch(ctx context.Context, cancel context.CancelCauseFunc, progress *atomic.Int64) {
	type sample struct {
		at time.Time
		n  int64
	}
	tick := max(min(c.cfg.StallTimeout, c.cfg.MinRateWindow)/4, time.Millisecond)
	start := c.clock.Now()
	samples := []sample{{start, 0}}
	lastByte, lastN := start, int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(tick):
		}
		now, n := c.clock.Now(), progress.Load()
		if n != lastN {
			lastByte, lastN = now, n
		}
		if now.Sub(lastByte) >= c.cfg.StallTimeout {
			cancel(&upstreamTimeout{reason: reasonStalled, msg: fmt.Sprintf("upstream stalled for %s", c.cfg.StallTimeout)})
			return
		}
		if c.cfg.MinRate > 0 {
			// Keep the newest sample at or before the window's start and
			// every later one: samples[0] then opens the window.
			samples = append(samples, sample{now, n})
			from := now.Add(-c.cfg.MinRateWindow)
			i := 0
			for i+1 < len(samples) && !samples[i+1].at.After(from) {
				i++
			}
			samples = samples[i:]
			if first := samples[0]; !first.at.After(from) {
				span := now.Sub(first.at)
				if got := n - first.n; float64(got) < float64(c.cfg.MinRate)*span.Seconds() {
					cancel(&upstreamTimeout{reason: reasonTooSlow,
						msg: fmt.Sprintf("upstream sent %d bytes in %s, below the minimum of %d bytes/s", got, span, c.cfg.MinRate)})
					return
				}
			}
		}
	}
}

// upstreamTimeout is an upstream that did not deliver in time: an attempt
// cut by the watchdog, or the download deadline. It is a timeout
// (net.Error), so a request that gives up on it gets a 504.
type upstreamTimeout struct{ reason, msg string }

func (e *upstreamTimeout) Error() string   { return e.msg }
func (e *upstreamTimeout) Timeout() bool   { return true }
func (e *upstreamTimeout) Temporary() bool { return true }

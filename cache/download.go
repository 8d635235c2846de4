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
	buf := make([]byte, 256<<10)
	failures := 0
	var lastErr error
	for {
		n, aerr := c.attempt(ctx, m, ti, f, &v, buf)
		if aerr == nil {
			break
		}
		if errors.Is(aerr, tuf.ErrTooLong) || errors.Is(aerr, errFatal) {
			if errors.Is(aerr, tuf.ErrTooLong) {
				result = "verify_failed"
				c.met.verifyFailures.WithLabelValues(repo).Inc()
				c.integrity(IntegrityEvent{Kind: IntegrityUpstreamRejected, Repo: repo, Path: ti.Path, Detail: aerr.Error()})
				return "", fmt.Errorf("cache: fetch %s/%s: %w: %w", repo, ti.Path, ErrVerification, aerr)
			}
			return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, aerr)
		}
		lastErr = aerr
		if ctx.Err() != nil {
			return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, ctx.Err())
		}
		if n > 0 {
			failures = 0
		} else {
			failures++
		}
		if failures >= c.cfg.FetchRetries {
			return "", fmt.Errorf("cache: fetch %s/%s: %d attempts without progress: %w", repo, ti.Path, failures, lastErr)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("cache: fetch %s/%s: %w", repo, ti.Path, ctx.Err())
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

// attempt runs one upstream GET from the verifier's position on, appending
// to f. It returns the bytes gained, and nil once the body ended (whether
// complete or short: Verify decides). A body that ignored the Range
// restarts the file and the verifier from zero.
func (c *Cache) attempt(ctx context.Context, m *tuf.Mirror, ti tuf.TargetInfo, f *os.File, vp **tuf.Verifier, buf []byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := *vp
	offset := v.Written()
	body, err := m.OpenTarget(ctx, ti, offset)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if offset > 0 {
		if body.Offset == offset {
			c.met.resumes.WithLabelValues(m.Name()).Inc()
		} else {
			// The upstream sent the whole file again: start over.
			if err := f.Truncate(0); err != nil {
				return 0, fmt.Errorf("%w: %w", errFatal, err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return 0, fmt.Errorf("%w: %w", errFatal, err)
			}
			nv, err := tuf.NewVerifier(ti)
			if err != nil {
				return 0, fmt.Errorf("%w: %w", errFatal, err)
			}
			*vp, v, offset = nv, nv, 0
		}
	}
	// Stall watchdog: cancel the attempt if no byte arrived for a while.
	var progress atomic.Int64
	stalled := make(chan struct{})
	go func() {
		last := int64(-1)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.clock.After(c.cfg.StallTimeout):
			}
			if p := progress.Load(); p == last {
				close(stalled)
				cancel()
				return
			} else {
				last = p
			}
		}
	}()
	upstreamBytes := c.met.upstreamBytes.WithLabelValues(m.Name())
	var src io.Reader = body
	if c.pacer != nil {
		src = c.pacer.UpstreamReader(ctx, body)
	}
	var gained int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			progress.Add(int64(n))
			upstreamBytes.Add(float64(n))
			// The verifier first: it refuses the first byte past the
			// verified length, which then never reaches the file.
			if _, err := v.Write(buf[:n]); err != nil {
				return gained, err
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return gained, fmt.Errorf("%w: write: %w", errFatal, err)
			}
			gained += int64(n)
		}
		if rerr == io.EOF {
			if v.Written() < ti.Length {
				return gained, fmt.Errorf("upstream body ended at %d of %d bytes", v.Written(), ti.Length)
			}
			return gained, nil
		}
		if rerr != nil {
			select {
			case <-stalled:
				return gained, &stallError{after: c.cfg.StallTimeout}
			default:
			}
			return gained, rerr
		}
	}
}

// stallError is an upstream attempt that delivered nothing for too long; it
// is a timeout (net.Error), so a request that gives up on it gets a 504.
type stallError struct{ after time.Duration }

func (e *stallError) Error() string   { return fmt.Sprintf("upstream stalled for %s", e.after) }
func (e *stallError) Timeout() bool   { return true }
func (e *stallError) Temporary() bool { return true }

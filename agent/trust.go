package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/patchgate/patchgate/tuf"
)

// trust is one repository's TUF client: go-tuf's updater over the appliance's metadata
// mirror (GET /repos/{repo}/metadata/...), anchored in the upstream root the site's IT
// installed on the endpoint. The appliance only relays the metadata: anything it
// changes fails verification against that root. Verified metadata is kept in dir, so
// rollbacks are refused across restarts. A trust is safe for concurrent use.
type trust struct {
	repo    string
	metaURL string // absolute, ends in /
	pinned  []byte // the root.json IT trusts
	dir     string
	http    *http.Client
	now     func() time.Time // the reference time for expiry checks (the agent's clock)

	mu sync.Mutex // one updater at a time: they share dir
}

// targetInfo refreshes the metadata with a fresh updater and returns what it says of
// path: the exact length and hashes the downloaded bytes must have.
func (t *trust) targetInfo(ctx context.Context, path string) (tuf.TargetInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	up, err := t.updater(ctx)
	if err != nil {
		return tuf.TargetInfo{}, err
	}
	// Expiry is judged on the agent's clock, not the system's (go-tuf v2.4.2 has
	// no config option for it; this is its setter).
	up.UnsafeSetRefTime(t.now())
	if err := up.Refresh(); err != nil {
		return tuf.TargetInfo{}, fmt.Errorf("agent: tuf %s: refresh metadata: %w", t.repo, err)
	}
	tf, err := up.GetTargetInfo(path)
	if err != nil {
		return tuf.TargetInfo{}, fmt.Errorf("agent: tuf %s: %s: %w", t.repo, path, err)
	}
	ti := tuf.TargetInfo{Path: tf.Path, Length: tf.Length, Hashes: map[string]tuf.HexBytes{}}
	for alg, h := range tf.Hashes {
		ti.Hashes[alg] = tuf.HexBytes(h)
	}
	if tf.Custom != nil {
		ti.Custom = *tf.Custom
	}
	return ti, nil
}

// updater builds an updater that starts from the newest root verified before (kept in
// dir), or from the pinned root.
func (t *trust) updater(ctx context.Context) (*updater.Updater, error) {
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: tuf %s: %w", t.repo, err)
	}
	var errs []error
	for _, root := range [][]byte{readIfExists(filepath.Join(t.dir, "root.json")), t.pinned} {
		if root == nil {
			continue
		}
		cfg, err := config.New(t.metaURL, root)
		if err != nil {
			return nil, fmt.Errorf("agent: tuf %s: %w", t.repo, err)
		}
		cfg.LocalMetadataDir = t.dir
		cfg.LocalTargetsDir = filepath.Join(t.dir, "targets") // unused: targets are streamed
		cfg.Fetcher = &metaFetcher{ctx: ctx, http: t.http}
		up, err := updater.New(cfg)
		if err == nil {
			return up, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("agent: tuf %s: load trusted root: %w", t.repo, errors.Join(errs...))
}

func readIfExists(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// metaFetcher is go-tuf's Fetcher on the agent's HTTP client. It lives for one refresh,
// which is why it holds that refresh's ctx.
type metaFetcher struct {
	ctx  context.Context
	http *http.Client
}

// DownloadFile implements fetcher.Fetcher with tuf.GetMetadata: at most maxLength bytes,
// non-200 answers as *metadata.ErrDownloadHTTP (go-tuf ends its root walk on 404).
func (f *metaFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	return tuf.GetMetadata(ctx, f.http, url, "", maxLength)
}

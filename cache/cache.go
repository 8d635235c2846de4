package cache

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/tuf"
)

// Config configures a Cache.
type Config struct {
	// Dir holds the store (objects/ and tmp/).
	Dir string
	// QuotaBytes bounds the stored bytes; least recently used objects that
	// no rollout pins are evicted past it (0: no quota).
	QuotaBytes int64
	// ScrubBytesPerSecond is the rate at which the scrubber re-hashes
	// stored objects (0: no scrubbing).
	ScrubBytesPerSecond int64
	// ScrubPause is the rest between two scrub passes (default 1h).
	ScrubPause time.Duration
	// MaxAttempts is how many upstream attempts in a row may fail (end
	// without adding new verified bytes at MinRate or better) before a
	// download is given up (default 5).
	MaxAttempts int
	// RetryBackoff is the first wait between attempts, doubled after each
	// failed one up to 64 times it (default 1s).
	RetryBackoff time.Duration
	// StallTimeout aborts an upstream attempt that delivered no byte for
	// this long (default 60s); the next attempt resumes with Range.
	StallTimeout time.Duration
	// DownloadDeadline bounds one download, every attempt and back-off
	// included; past it the download is given up (default 1h).
	DownloadDeadline time.Duration
	// MinRate is the fewest bytes per second an attempt must receive over
	// every MinRateWindow (default 1 KiB/s; negative: no minimum). Time
	// spent in the appliance's own upstream caps counts against it.
	MinRate int64
	// MinRateWindow is the sliding window MinRate is measured over
	// (default 60s); an attempt younger than it is not judged.
	MinRateWindow time.Duration
	// MemoryObjectBytes is the largest object kept in memory for hits
	// (default 64 KiB; negative: none); MemoryBytes bounds them all
	// (default 32 MiB).
	MemoryObjectBytes int64
	MemoryBytes       int64
}

// Options are a Cache's collaborators.
type Options struct {
	Logger     *slog.Logger          // required
	Registerer prometheus.Registerer // required
	Clock      clock.Clock           // nil: the real clock
	// Upstream paces upstream target bodies (e.g. *Shaper's upstream cap);
	// nil: no pacing beyond each mirror's own cap.
	Upstream UpstreamPacer
	// OnIntegrity, if set, is told of every failed integrity check (see
	// IntegrityEvent). It is called synchronously from the goroutine that found the
	// failure, so it should be quick; it must be safe for concurrent use.
	OnIntegrity func(IntegrityEvent)
}

// UpstreamPacer paces an upstream response body; *Shaper implements it.
type UpstreamPacer interface {
	UpstreamReader(ctx context.Context, r io.Reader) io.Reader
}

// Cache is the verified update cache over a set of upstream mirrors. It is
// safe for concurrent use. Run runs its scrubber until ctx is done; Close
// stops downloads in flight.
type Cache struct {
	cfg   Config
	pacer UpstreamPacer
	// onIntegrity is Options.OnIntegrity; nil for none.
	onIntegrity func(IntegrityEvent)
	log         *slog.Logger
	clock       clock.Clock
	met         *metrics
	store       *store
	small       *smallObjects
	mirrors     map[string]*tuf.Mirror
	names       []string
	done        chan struct{}
	closeMu     sync.Once

	failLogs logLimiter // request failures, per repository

	mu       sync.Mutex
	inflight map[string]*call         // download key -> call
	aliases  map[string]string        // "sha512:HEX" -> sha256 key, for targets listing no sha256
	pins     map[pinKey]int           // pinned targets -> count
	problems map[string]problemRecord // code -> latest
}

type pinKey struct{ repo, path string }

type problemRecord struct {
	p  health.Problem
	at time.Time
}

type call struct {
	done chan struct{}
	key  string
	err  error
}

// New opens (or creates) the store in cfg.Dir, removing downloads left
// unfinished by an earlier run, and indexes the objects in it.
func New(cfg Config, mirrors []*tuf.Mirror, opts Options) (*Cache, error) {
	if cfg.Dir == "" {
		return nil, errors.New("cache: new: no directory")
	}
	if opts.Logger == nil || opts.Registerer == nil {
		return nil, errors.New("cache: new: logger and registerer are required")
	}
	cfg.ScrubPause = cmp.Or(cfg.ScrubPause, time.Hour)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 5)
	cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, time.Second)
	cfg.StallTimeout = cmp.Or(cfg.StallTimeout, 60*time.Second)
	cfg.DownloadDeadline = cmp.Or(cfg.DownloadDeadline, time.Hour)
	cfg.MinRate = cmp.Or(cfg.MinRate, 1<<10)
	cfg.MinRateWindow = cmp.Or(cfg.MinRateWindow, 60*time.Second)
	cfg.MemoryObjectBytes = cmp.Or(cfg.MemoryObjectBytes, 64<<10)
	cfg.MemoryBytes = cmp.Or(cfg.MemoryBytes, 32<<20)
	c := &Cache{
		cfg: cfg, pacer: opts.Upstream, onIntegrity: opts.OnIntegrity, log: opts.Logger, clock: opts.Clock, mirrors: map[string]*tuf.Mirror{},
		done: make(chan struct{}), inflight: map[string]*call{}, aliases: map[string]string{},
		pins: map[pinKey]int{}, problems: map[string]problemRecord{},
		failLogs: logLimiter{interval: 10 * time.Second},
	}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	for _, m := range mirrors {
		if _, dup := c.mirrors[m.Name()]; dup {
			return nil, fmt.Errorf("cache: new: repository %q configured twice", m.Name())
		}
		c.mirrors[m.Name()] = m
		c.names = append(c.names, m.Name())
	}
	slices.Sort(c.names)
	st, removed, err := openStore(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("cache: open store %s: %w", cfg.Dir, err)
	}
	if removed > 0 {
		c.log.Warn("removed files that are not objects from the store", "count", removed)
	}
	c.store = st
	c.small = newSmallObjects(cfg.MemoryObjectBytes, cfg.MemoryBytes)
	met, err := newMetrics(opts.Registerer, c)
	if err != nil {
		return nil, fmt.Errorf("cache: new: metrics: %w", err)
	}
	met.addRepos(c.names)
	c.met = met
	return c, nil
}

// Close stops downloads in flight; requests waiting on them fail. It is
// safe to call more than once.
func (c *Cache) Close() error {
	c.closeMu.Do(func() { close(c.done) })
	return nil
}

// Close closes the object's file, if any.
func (o *Object) Close() error {
	if o.File == nil {
		return nil
	}
	return o.File.Close()
}

// Repos returns the names of the configured repositories, sorted.
func (c *Cache) Repos() []string { return slices.Clone(c.names) }

// Mirror returns the mirror of a repository, or nil.
func (c *Cache) Mirror(repo string) *tuf.Mirror { return c.mirrors[repo] }

// ErrUnknownRepo is returned (wrapped) for a repository not configured.
var ErrUnknownRepo = errors.New("unknown repository")

// ErrVerification is returned (wrapped) when upstream bytes did not match
// the verified metadata; they were discarded.
var ErrVerification = errors.New("upstream bytes failed verification")

// Object is a verified stored target: an open file, or for small hot
// objects its bytes in memory (File nil). Close it when done.
type Object struct {
	*os.File
	// Data holds the bytes of a small object served from memory.
	Data []byte
	// Key is the object's sha256, as lowercase hex (its ETag).
	Key string
	// Target is what verified metadata says of it.
	Target tuf.TargetInfo
	// Hit is true when it was in the store before the request.
	Hit bool
}

// Get returns the verified target at path in repo (no hash prefix), from the
// store or, on a miss, after one upstream download shared by every
// concurrent request for it. The caller closes the Object.
func (c *Cache) Get(ctx context.Context, repo, path string) (*Object, error) {
	m, ok := c.mirrors[repo]
	if !ok {
		return nil, fmt.Errorf("cache: get %s/%s: %w", repo, path, ErrUnknownRepo)
	}
	ti, err := m.Target(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("cache: get %s/%s: %w", repo, path, err)
	}
	return c.open(ctx, m, ti)
}

// open returns the stored object for ti, downloading it on a miss.
func (c *Cache) open(ctx context.Context, m *tuf.Mirror, ti tuf.TargetInfo) (*Object, error) {
	repo := m.Name()
	for attempt := 0; ; attempt++ {
		key, known := c.keyOf(ti)
		if known {
			if e, ok := c.store.lookup(key, c.clock.Now(), repo, ti.Path); ok {
				if e.size == ti.Length && e.size <= c.cfg.MemoryObjectBytes {
					it := c.small.get(key)
					if it == nil {
						it = c.small.load(c.store.objectPath(key), key, e.size)
					}
					if it != nil {
						c.met.repo(repo).hits.Inc()
						return &Object{Data: it.data, Key: key, Target: ti, Hit: attempt == 0}, nil
					}
				}
				f, err := c.openObject(key, e.size, ti)
				if err == nil {
					c.met.repo(repo).hits.Inc()
					return &Object{File: f, Key: key, Target: ti, Hit: attempt == 0}, nil
				}
				if attempt > 2 {
					return nil, fmt.Errorf("cache: open %s/%s: %w", repo, ti.Path, err)
				}
			}
		}
		if attempt == 0 {
			c.met.misses.WithLabelValues(repo).Inc()
		}
		if attempt > 2 {
			return nil, fmt.Errorf("cache: open %s/%s: object vanished after download", repo, ti.Path)
		}
		if _, err := c.fetch(ctx, m, ti); err != nil {
			return nil, err
		}
	}
}

// memoryHit returns the in-memory copy of ti's object when the store holds
// it and it is kept in memory, marking it used and counting a hit; nil
// otherwise (open then takes over). It allocates nothing.
func (c *Cache) memoryHit(repo string, ti tuf.TargetInfo) *smallItem {
	sum, ok := ti.Hashes["sha256"]
	if !ok || len(sum) != sha256.Size || ti.Length > c.cfg.MemoryObjectBytes {
		return nil
	}
	it := c.small.getSum(sum)
	if it == nil || int64(len(it.data)) != ti.Length {
		return nil
	}
	if _, ok := c.store.lookup(it.key, c.clock.Now(), repo, ti.Path); !ok {
		return nil // removed meanwhile: open sorts it out
	}
	c.met.repo(repo).hits.Inc()
	return it
}

// openObject opens a stored object and checks its size against ti; an
// object of the wrong size (damaged store) is dropped.
func (c *Cache) openObject(key string, size int64, ti tuf.TargetInfo) (*os.File, error) {
	f, err := os.Open(c.store.objectPath(key))
	if err != nil {
		c.removeObject(key)
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != ti.Length || size != ti.Length {
		f.Close()
		c.dropDamaged(key, fmt.Sprintf("size %d on disk, %d verified", fi.Size(), ti.Length))
		return nil, fmt.Errorf("stored object %s has the wrong size", key)
	}
	return f, nil
}

func (c *Cache) dropDamaged(key, why string) {
	c.removeObject(key)
	c.met.damaged.Inc()
	c.integrity(IntegrityEvent{Kind: IntegrityStoredDamaged, Key: key, Detail: why})
	c.setProblem(health.Problem{Code: "cache-object-damaged", Severity: health.Warning,
		Text: fmt.Sprintf("stored object %s was damaged (%s) and was dropped; it will be fetched again", key, why)})
	c.log.Warn("dropped damaged object", "key", key, "why", why)
}

// keyOf returns the store key of ti: its listed sha256, or the sha256 learnt
// when a target listing only other hashes was downloaded.
func (c *Cache) keyOf(ti tuf.TargetInfo) (string, bool) {
	if k, ok := ti.SHA256(); ok {
		return k, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range aliasNames(ti) {
		if k, ok := c.aliases[a]; ok {
			return k, true
		}
	}
	return "", false
}

func aliasNames(ti tuf.TargetInfo) []string {
	var out []string
	for _, alg := range tuf.SupportedHashes {
		if h, ok := ti.Hashes[alg]; ok {
			out = append(out, alg+":"+h.String())
		}
	}
	return out
}

// fetch downloads ti into the store unless a download of it is already in
// flight, in which case it waits for that one. The download is detached
// from ctx (others may be waiting on it); Close stops it.
func (c *Cache) fetch(ctx context.Context, m *tuf.Mirror, ti tuf.TargetInfo) (string, error) {
	flightKey, ok := ti.SHA256()
	if !ok {
		names := aliasNames(ti)
		if len(names) == 0 {
			return "", fmt.Errorf("cache: fetch %s/%s: %w", m.Name(), ti.Path, tuf.ErrNoSupportedHash)
		}
		flightKey = names[0]
	}
	c.mu.Lock()
	cl, joined := c.inflight[flightKey]
	if joined {
		c.met.coalesced.WithLabelValues(m.Name()).Inc()
	} else {
		cl = &call{done: make(chan struct{})}
		c.inflight[flightKey] = cl
		dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-dctx.Done():
			}
		}()
		go func() {
			defer cancel()
			cl.key, cl.err = c.download(dctx, m, ti)
			c.mu.Lock()
			delete(c.inflight, flightKey)
			c.mu.Unlock()
			close(cl.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.key, cl.err
	case <-ctx.Done():
		return "", fmt.Errorf("cache: fetch %s/%s: %w", m.Name(), ti.Path, ctx.Err())
	}
}

// Prefetch makes sure the targets at paths of repo are in the store, two
// downloads at a time, and pins nothing (see Pin). It returns every failure.
func (c *Cache) Prefetch(ctx context.Context, repo string, paths []string) error {
	sem := make(chan struct{}, 2)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range paths {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			obj, err := c.Get(ctx, repo, p)
			if err == nil {
				obj.Close()
				return
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Pin protects the target at path of repo from eviction until as many
// Unpin calls; the rollout engine pins what an active rollout needs. A pin
// follows the path: when the metadata moves it to new bytes, the new object
// is protected.
func (c *Cache) Pin(repo, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[pinKey{repo, path}]++
}

// Unpin undoes one Pin.
func (c *Cache) Unpin(repo, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := pinKey{repo, path}
	if c.pins[k] <= 1 {
		delete(c.pins, k)
		return
	}
	c.pins[k]--
}

// pinnedKeys resolves pins to store keys with the current metadata.
func (c *Cache) pinnedKeys() map[string]bool {
	c.mu.Lock()
	pins := make([]pinKey, 0, len(c.pins))
	for k := range c.pins {
		pins = append(pins, k)
	}
	c.mu.Unlock()
	out := map[string]bool{}
	// A lookup may fetch a delegated role the current metadata has not
	// verified yet; bound it, an unresolved pin is only not protected now.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range pins {
		m, ok := c.mirrors[p.repo]
		if !ok {
			continue
		}
		ti, err := m.Target(ctx, p.path)
		if err != nil {
			continue
		}
		if k, ok := c.keyOf(ti); ok {
			out[k] = true
		}
	}
	return out
}

// evict removes least recently used unpinned objects until the store fits
// its quota, never keep (the object just stored).
func (c *Cache) evict(keep string) {
	if c.cfg.QuotaBytes <= 0 {
		return
	}
	victims := c.store.evictable(c.cfg.QuotaBytes, c.pinnedKeys(), keep)
	for _, k := range victims {
		n, err := c.removeObject(k)
		if err != nil {
			c.log.Warn("evict object", "key", k, "err", err)
			continue
		}
		c.met.evictions.Inc()
		c.met.evictedBytes.Add(float64(n))
	}
}

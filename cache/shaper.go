package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/patchgate/patchgate/metric"
)

// DefaultShapeChunk is the largest number of bytes a shaped download writes at once:
// small enough that downloads take turns many times a
// second, large enough that the waits cost little CPU.
const DefaultShapeChunk = 32 << 10

// ShaperConfig sets the shaper's byte budgets. Every rate is in bytes per second at
// 100% of the schedule, and 0 means "no cap" for that budget; the schedule scales all
// of them at once.
type ShaperConfig struct {
	// Site caps everything served, summed over every client.
	Site int64
	// Segments are the segments counted, and capped when their Rate is set; which
	// segment a client is in, ShaperOptions.Segments says. A client in none of them is
	// counted as "other" and capped by the site and client budgets only.
	Segments []ShaperSegment
	// Client caps what one client (see ShaperOptions.ClientKey) gets, summed over its
	// concurrent downloads.
	Client int64
	// Upstream caps fetches from upstream (the WAN), summed over all of them. It is
	// separate from the serving budgets.
	Upstream int64
	// Schedule scales the caps by time of day; the first period that covers the
	// current time wins, else DefaultPercent applies.
	Schedule []ShapePeriod
	// DefaultPercent applies outside every period (1-100; 0 means 100).
	DefaultPercent int
	// Location is the site's zone the schedule is read in (nil: UTC).
	Location *time.Location
	// Chunk is the smallest number of bytes written per turn (0:
	// DefaultShapeChunk). A turn is about 10ms of the download's share of its
	// tightest budget, between Chunk and 16*Chunk: small turns keep sharing fine
	// at low rates, large ones keep the waits cheap at high rates. Each budget's
	// burst is the larger of two chunks and 50ms at its current rate: enough to
	// absorb a late timer, too little to matter to the cap.
	Chunk int
}

// ShaperSegment is one segment's budget.
type ShaperSegment struct {
	Name string
	Rate int64 // bytes per second at 100%; 0: not capped, only counted
}

// SegmentNamer names the segment a client address is in, "" when none: the
// appliance's segment table (appliance/segment.Table) is one.
type SegmentNamer interface {
	NameOf(netip.Addr) string
}

// ShaperOptions are a Shaper's collaborators.
type ShaperOptions struct {
	Logger     *slog.Logger          // required
	Registerer prometheus.Registerer // required
	// Now tells the time the schedule is read at (nil: time.Now). The token buckets
	// themselves pace in real time, as they must to pace real sockets.
	Now func() time.Time
	// ClientKey names the client a request comes from (nil, or an empty name: its
	// remote IP address).
	// Downloads with the same key share one client budget and take turns.
	ClientKey func(*http.Request) string
	// Segments says which segment a client address is in (nil: none, every client
	// is "other").
	Segments SegmentNamer
}

// Shaper paces what the cache serves with token buckets (golang.org/x/time/rate): one
// for the site, one per segment, one per client, and a separate one for upstream
// fetches. A shaped download writes in chunks; before each chunk it waits, in this
// order, for its client's budget, its segment's and the site's. Each client has at most
// one chunk waiting at a time (its downloads take turns), and the buckets serve waiters
// in the order they asked, so clients share a congested budget round-robin: a client
// with many connections gets no more than one with a single connection.
//
// The caps follow the time-of-day schedule; the Shaper notices a turn of the schedule
// on its next use (a chunk, a scrape, Status) and sets the new rates on every bucket,
// downloads in flight included. A Shaper is safe for concurrent use and has no
// goroutines of its own.
type Shaper struct {
	cfg       ShaperConfig
	sched     shapeSchedule
	log       *slog.Logger
	now       func() time.Time
	clientKey func(*http.Request) string
	chunk     int
	met       *shaperMetrics

	site     *shapeBudget // nil: no site cap
	upstream *shapeBudget // nil: no upstream cap
	segNames SegmentNamer
	segments []*shaperSegment
	other    *shaperSegment // clients in no segment
	upMeter  shapeMeter

	percent   atomic.Int32
	untilNano atomic.Int64 // when the schedule may next turn, Unix ns

	mu         sync.Mutex // guards clients and the schedule turn
	clients    map[string]*shaperClient
	active     int
	clientsNow atomic.Int32 // len(clients), for turnSize
	bufs       sync.Pool    // *[]byte of 16*chunk, for ReadFrom
}

// shapeBudget is one token bucket and the rate it has at 100%.
type shapeBudget struct {
	name string // site, segment, client, upstream: the metrics label
	full int64
	lim  *rate.Limiter
}

type shaperSegment struct {
	name   string
	budget *shapeBudget // nil: not capped
	meter  shapeMeter
	served prometheus.Counter
}

type shaperClient struct {
	key    string
	seg    *shaperSegment
	budget *shapeBudget  // nil: no client cap
	turn   chan struct{} // capacity 1: held while a chunk of this client waits
	active int           // downloads in flight, under Shaper.mu
	served atomic.Int64  // bytes, for Status
	start  time.Time     // first download of this busy spell
}

// NewShaper checks cfg and builds a Shaper.
func NewShaper(cfg ShaperConfig, opts ShaperOptions) (*Shaper, error) {
	if opts.Logger == nil || opts.Registerer == nil {
		return nil, errors.New("cache: shaper: logger and registerer are required")
	}
	if cfg.DefaultPercent == 0 {
		cfg.DefaultPercent = 100
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Chunk == 0 {
		cfg.Chunk = DefaultShapeChunk
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cache: shaper: %w", err)
	}
	s := &Shaper{
		cfg:       cfg,
		sched:     shapeSchedule{periods: slices.Clone(cfg.Schedule), def: cfg.DefaultPercent, loc: cfg.Location},
		log:       opts.Logger,
		now:       opts.Now,
		clientKey: opts.ClientKey,
		segNames:  opts.Segments,
		chunk:     cfg.Chunk,
		clients:   map[string]*shaperClient{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.clientKey == nil {
		s.clientKey = remoteIP
	}
	s.bufs.New = func() any { b := make([]byte, 16*s.chunk); return &b }
	ms := metric.New(opts.Registerer, "shaper")
	s.met = newShaperMetrics(s, ms)
	s.site = s.newBudget("site", cfg.Site)
	s.upstream = s.newBudget("upstream", cfg.Upstream)
	for _, sc := range cfg.Segments {
		s.segments = append(s.segments, s.newSegment(sc.Name, sc.Rate))
	}
	s.other = s.newSegment("other", 0)
	ms.Register(s.met) // its gauges read the budgets at scrape time: now they are built
	if err := ms.Err(); err != nil {
		return nil, fmt.Errorf("cache: shaper: %w", err)
	}
	s.mu.Lock()
	s.turnLocked(s.now())
	s.mu.Unlock()
	return s, nil
}

func (c ShaperConfig) validate() error {
	var errs []error
	for name, r := range map[string]int64{"site": c.Site, "client": c.Client, "upstream": c.Upstream} {
		if r < 0 {
			errs = append(errs, fmt.Errorf("%s rate %d is negative", name, r))
		}
	}
	if c.DefaultPercent < 1 || c.DefaultPercent > 100 {
		errs = append(errs, fmt.Errorf("default percent %d is not 1-100", c.DefaultPercent))
	}
	if c.Chunk < 512 {
		errs = append(errs, fmt.Errorf("chunk %d is below 512 bytes", c.Chunk))
	}
	seen := map[string]bool{"other": true}
	for i, sg := range c.Segments {
		if sg.Name == "" || seen[sg.Name] {
			errs = append(errs, fmt.Errorf("segment %d: name %q is empty, reserved or repeated", i, sg.Name))
		}
		seen[sg.Name] = true
		if sg.Rate < 0 {
			errs = append(errs, fmt.Errorf("segment %s: rate %d is negative", sg.Name, sg.Rate))
		}
	}
	for i, p := range c.Schedule {
		if err := p.validate(); err != nil {
			errs = append(errs, fmt.Errorf("schedule period %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Shaper) newBudget(name string, full int64) *shapeBudget {
	if full <= 0 {
		return nil
	}
	b := &shapeBudget{name: name, full: full, lim: rate.NewLimiter(0, 0)}
	s.setRate(b)
	return b
}

func (s *Shaper) newSegment(name string, full int64) *shaperSegment {
	sg := &shaperSegment{name: name, served: s.met.served.WithLabelValues(name)}
	if b := s.newBudget("segment", full); b != nil {
		sg.budget = b
	}
	return sg
}

// segmentOf returns the segment a client address belongs to.
func (s *Shaper) segmentOf(a netip.Addr) *shaperSegment {
	if s.segNames == nil {
		return s.other
	}
	if name := s.segNames.NameOf(a); name != "" {
		for _, sg := range s.segments {
			if sg.name == name {
				return sg
			}
		}
	}
	return s.other
}

// Shaping reports whether any serving budget caps anything; when none does, Wrap
// leaves the writer's sendfile path alone.
func (s *Shaper) Shaping() bool {
	if s.site != nil || s.cfg.Client > 0 {
		return true
	}
	for _, sg := range s.segments {
		if sg.budget != nil {
			return true
		}
	}
	return false
}

// Wrap returns the writer a download of r must write its body to, and a function to
// call once the response is finished. When a budget applies, the writer paces every
// write as the type comment says (its ReadFrom reads the body in turns instead of
// using sendfile); when none applies (no site, segment or client cap) it only counts bytes and
// hands ReadFrom to w, keeping the kernel's sendfile path. The writer unwraps to w for
// http.ResponseController.
func (s *Shaper) Wrap(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	seg := s.other
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		seg = s.segmentOf(ap.Addr())
	}
	if seg.budget == nil && s.site == nil && s.cfg.Client <= 0 {
		return &countingWriter{ResponseWriter: w, seg: seg}, func() {}
	}
	key := s.clientKey(r)
	if key == "" {
		key = remoteIP(r)
	}
	c := s.acquire(key, seg)
	sw := &shapedWriter{ResponseWriter: w, ctx: r.Context(), s: s, c: c}
	var once sync.Once
	return sw, func() { once.Do(func() { s.release(c) }) }
}

// Handler wraps next (the cache's target handler) so that every response body it
// writes goes through Wrap.
func (s *Shaper) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, done := s.Wrap(w, r)
		defer done()
		next.ServeHTTP(sw, r)
	})
}

func (s *Shaper) acquire(key string, seg *shaperSegment) *shaperClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[key]
	if c == nil {
		c = &shaperClient{key: key, seg: seg, turn: make(chan struct{}, 1), start: s.now()}
		if s.cfg.Client > 0 {
			c.budget = s.newBudget("client", s.cfg.Client)
		}
		s.clients[key] = c
		s.clientsNow.Store(int32(len(s.clients)))
	}
	c.active++
	s.active++
	return c
}

func (s *Shaper) release(c *shaperClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.active--
	s.active--
	if c.active == 0 {
		delete(s.clients, c.key)
		s.clientsNow.Store(int32(len(s.clients)))
	}
}

// scaled is a full rate scaled by the current percent, as a rate.Limit.
func (s *Shaper) scaled(full int64) rate.Limit {
	return rate.Limit(float64(full) * float64(s.percent.Load()) / 100)
}

// setRate sets b's rate and burst for the current percent.
func (s *Shaper) setRate(b *shapeBudget) {
	r := s.scaled(b.full)
	b.lim.SetLimit(r)
	b.lim.SetBurst(max(2*s.chunk, int(float64(r)/20)))
}

// refresh applies a turn of the schedule if one is due.
func (s *Shaper) refresh() {
	now := s.now()
	if now.UnixNano() < s.untilNano.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.UnixNano() < s.untilNano.Load() { // another caller turned it
		return
	}
	s.turnLocked(now)
}

// turnLocked reads the schedule at now and sets every bucket's rate.
func (s *Shaper) turnLocked(now time.Time) {
	pct, until := s.sched.at(now)
	old := s.percent.Swap(int32(pct))
	s.untilNano.Store(until.UnixNano())
	if int(old) == pct {
		return
	}
	for _, b := range s.budgets() {
		s.setRate(b)
	}
	if old != 0 {
		s.log.Info("bandwidth schedule turned", "percent", pct, "was", old, "until", until)
	}
}

// budgets returns every live bucket; the caller holds s.mu.
func (s *Shaper) budgets() []*shapeBudget {
	var bs []*shapeBudget
	for _, b := range []*shapeBudget{s.site, s.upstream} {
		if b != nil {
			bs = append(bs, b)
		}
	}
	for _, sg := range s.segments {
		if sg.budget != nil {
			bs = append(bs, sg.budget)
		}
	}
	for _, c := range s.clients {
		if c.budget != nil {
			bs = append(bs, c.budget)
		}
	}
	return bs
}

// take waits until client c may send n bytes (n <= 16*chunk, within every burst).
func (s *Shaper) take(ctx context.Context, c *shaperClient, n int) error {
	s.refresh()
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.turn }()
	for _, b := range []*shapeBudget{c.budget, c.seg.budget, s.site} {
		if b == nil {
			continue
		}
		if err := s.wait(ctx, b, n); err != nil {
			return err
		}
	}
	return nil
}

// wait takes n tokens from b, counting the time spent waiting as throttled. It takes
// them a burst at a time (a schedule turn may have shrunk the burst since n was sized).
func (s *Shaper) wait(ctx context.Context, b *shapeBudget, n int) error {
	for n > 0 {
		k := min(n, max(1, b.lim.Burst()))
		if err := s.waitN(ctx, b, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (s *Shaper) waitN(ctx context.Context, b *shapeBudget, n int) error {
	r := b.lim.ReserveN(time.Now(), n)
	if !r.OK() {
		return fmt.Errorf("cache: shape: %d bytes exceed the %s burst", n, b.name)
	}
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	s.met.throttled.WithLabelValues(b.name).Add(d.Seconds())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// WaitUpstream waits until n more bytes may be fetched from upstream. Callers read
// upstream bodies in pieces of at most Chunk bytes; UpstreamReader does that.
func (s *Shaper) WaitUpstream(ctx context.Context, n int) error {
	s.met.upstream.Add(float64(n))
	s.upMeter.add(int64(n))
	if s.upstream == nil {
		return nil
	}
	s.refresh()
	for n > 0 {
		k := min(n, s.chunk)
		if err := s.wait(ctx, s.upstream, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// UpstreamReader paces r, an upstream response body, under the upstream cap. ctx is
// the fetch's context.
func (s *Shaper) UpstreamReader(ctx context.Context, r io.Reader) io.Reader {
	return &upstreamReader{ctx: ctx, r: r, s: s}
}

type upstreamReader struct {
	ctx context.Context // the one fetch this reader belongs to
	r   io.Reader
	s   *Shaper
}

func (u *upstreamReader) Read(p []byte) (int, error) {
	if len(p) > u.s.chunk {
		p = p[:u.s.chunk]
	}
	n, err := u.r.Read(p)
	if n > 0 {
		if werr := u.s.WaitUpstream(u.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// shapedWriter paces a response body.
type shapedWriter struct {
	http.ResponseWriter
	ctx context.Context // the request's: a client gone stops the waits
	s   *Shaper
	c   *shaperClient
}

func (w *shapedWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), w.s.turnSize(w.c))
		if err := w.s.take(w.ctx, w.c, n); err != nil {
			return written, err
		}
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		w.c.served.Add(int64(m))
		w.c.seg.count(m)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// ReadFrom sends src in turns of turnSize bytes. When the underlying writer has a
// ReadFrom (net/http's response does: sendfile for files), each turn is handed to it
// as a reader limited to the turn, so a shaped file still goes out with sendfile, one
// paced turn at a time; otherwise the turns are read into a buffer and written.
func (w *shapedWriter) ReadFrom(src io.Reader) (int64, error) {
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return w.readFromTurns(rf, src)
	}
	bp := w.s.bufs.Get().(*[]byte)
	defer w.s.bufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := io.ReadFull(src, buf[:w.s.turnSize(w.c)])
		if n > 0 {
			m, err := w.Write(buf[:n])
			total += int64(m)
			if err != nil {
				return total, err
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// readFromTurns hands rf one turn of src at a time. A src that is itself a limited
// reader (io.CopyN, http.ServeContent) is unwrapped so that each turn is a
// LimitedReader straight over the file, the shape net's sendfile recognises.
func (w *shapedWriter) readFromTurns(rf io.ReaderFrom, src io.Reader) (int64, error) {
	inner, outer := src, (*io.LimitedReader)(nil)
	if lr, ok := src.(*io.LimitedReader); ok {
		inner, outer = lr.R, lr
	}
	var total int64
	for {
		k := int64(w.s.turnSize(w.c))
		if outer != nil {
			if outer.N <= 0 {
				return total, nil
			}
			k = min(k, outer.N)
		}
		if err := w.s.take(w.ctx, w.c, int(k)); err != nil {
			return total, err
		}
		n, err := rf.ReadFrom(&io.LimitedReader{R: inner, N: k})
		if outer != nil {
			outer.N -= n
		}
		total += n
		w.c.served.Add(n)
		w.c.seg.count(int(n))
		if err != nil || n < k { // an error, or the end of src
			return total, err
		}
	}
}

func (w *shapedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// turnSize is how many bytes client c sends per turn: about 10ms of its share of the
// tightest budget over it (a shared budget's rate divided by the clients in flight),
// between one and sixteen chunks.
func (s *Shaper) turnSize(c *shaperClient) int {
	r := math.Inf(1)
	if c.budget != nil {
		r = float64(c.budget.lim.Limit())
	}
	shared := math.Inf(1)
	for _, b := range []*shapeBudget{c.seg.budget, s.site} {
		if b != nil {
			shared = min(shared, float64(b.lim.Limit()))
		}
	}
	if n := s.clientsNow.Load(); n > 0 {
		shared /= float64(n)
	}
	r = min(r, shared)
	return int(min(max(r/100, float64(s.chunk)), float64(16*s.chunk)))
}

// countingWriter counts what an unshaped response sends and passes ReadFrom on, so
// net/http still uses sendfile.
type countingWriter struct {
	http.ResponseWriter
	seg *shaperSegment
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.seg.count(n)
	return n, err
}

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.seg.count(int(n))
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (sg *shaperSegment) count(n int) {
	if n <= 0 {
		return
	}
	sg.served.Add(float64(n))
	sg.meter.add(int64(n))
}

// remoteIP is the default client key: the request's source address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

package passive

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"

	"github.com/patchgate/patchgate/netscan"
)

// Defaults of Config.
const (
	DefaultRepeatWindow = 10 * time.Minute
	DefaultSnaplen      = 2048
	DefaultRingBytes    = 4 << 20
)

// Config configures one Capture.
type Config struct {
	// Interface is the network interface to listen on (required).
	Interface string
	// Promiscuous also captures frames not addressed to the appliance
	// (useful on a mirror port; broadcasts and multicasts arrive anyway).
	Promiscuous bool
	// RepeatWindow passes an identical observation (same source, MAC,
	// address and facts) on at most once per window. Default 10m.
	RepeatWindow time.Duration
	// Snaplen is the most bytes kept of a frame. Default 2048.
	Snaplen int
	// RingBytes is the size of the kernel ring buffer. Default 4 MiB.
	RingBytes int
}

func (c Config) withDefaults() Config {
	if c.RepeatWindow == 0 {
		c.RepeatWindow = DefaultRepeatWindow
	}
	if c.Snaplen <= 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.RingBytes <= 0 {
		c.RingBytes = DefaultRingBytes
	}
	return c
}

// FrameSource yields captured Ethernet frames. The returned slice is valid
// until the next call. afpacket.TPacket and pcapgo.Reader are FrameSources.
type FrameSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Capture reads frames from one interface and passes on observations.
// Run it from one goroutine; Close stops it. Its methods are not safe for
// concurrent use except Close.
type Capture struct {
	cfg     Config
	src     FrameSource
	tp      *afpacket.TPacket // nil when reading a file
	dec     *Decoder
	m       *Metrics
	log     *slog.Logger
	now     func() time.Time
	repeats *repeats
	drops   uint
}

// Open opens an AF_PACKET socket on cfg.Interface with the Filter attached.
// It needs CAP_NET_RAW. m counts for every capture of the process; now
// stamps observations and ages the repeat window.
func Open(cfg Config, m *Metrics, log *slog.Logger, now func() time.Time) (*Capture, error) {
	cfg = cfg.withDefaults()
	if cfg.Interface == "" {
		return nil, errors.New("passive: open: no interface")
	}
	const block = 1 << 20
	blocks := max(cfg.RingBytes/block, 1)
	frame := 2048
	for frame < cfg.Snaplen+128 {
		frame *= 2
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(cfg.Interface),
		afpacket.OptFrameSize(frame),
		afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(blocks),
		afpacket.OptPollTimeout(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("passive: open %s: %w", cfg.Interface, err)
	}
	raw, err := bpf.Assemble(Filter(uint32(cfg.Snaplen)))
	if err == nil {
		err = tp.SetBPF(raw)
	}
	if err == nil && cfg.Promiscuous {
		err = tp.SetPromiscuous(true)
	}
	if err != nil {
		tp.Close()
		return nil, fmt.Errorf("passive: open %s: %w", cfg.Interface, err)
	}
	c := newCapture(cfg, tp, m, log, now)
	c.tp = tp
	if ifc, err := net.InterfaceByName(cfg.Interface); err == nil {
		c.dec.IgnoreSource(netscan.MACFrom(ifc.HardwareAddr))
	}
	return c, nil
}

// NewReplay returns a Capture that reads frames from src (a pcap reader,
// say) instead of a socket, labelled as captured on iface. Run returns nil
// at the end of src.
func NewReplay(iface string, src FrameSource, m *Metrics, log *slog.Logger, now func() time.Time) *Capture {
	return newCapture(Config{Interface: iface}.withDefaults(), src, m, log, now)
}

func newCapture(cfg Config, src FrameSource, m *Metrics, log *slog.Logger, now func() time.Time) *Capture {
	return &Capture{
		cfg: cfg, src: src, dec: NewDecoder(cfg.Interface), m: m, log: log, now: now,
		repeats: newRepeats(cfg.RepeatWindow),
	}
}

// Run reads and decodes frames until ctx is done (then it returns nil),
// the source ends (nil) or fails (an error). emit is called from Run's
// goroutine for every observation not repeated within the window.
func (c *Capture) Run(ctx context.Context, emit func(netscan.Observation)) error {
	iface := c.cfg.Interface
	seen, decoded, dropped := c.m.seen.WithLabelValues(iface), c.m.decoded.WithLabelValues(iface), c.m.dropped.WithLabelValues(iface)
	lastStats := c.now()
	var malformedLogged time.Time
	pass := func(o netscan.Observation) {
		if c.repeats.fresh(o) {
			c.m.emitted.WithLabelValues(string(o.Source)).Inc()
			emit(o)
		}
	}
	for {
		if ctx.Err() != nil {
			c.kernelStats()
			return nil
		}
		frame, ci, err := c.src.ZeroCopyReadPacketData()
		switch {
		case errors.Is(err, afpacket.ErrTimeout):
			c.kernelStats()
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("passive: read %s: %w", iface, err)
		}
		seen.Inc()
		t := ci.Timestamp
		if c.tp != nil || t.IsZero() {
			t = c.now()
		}
		c.repeats.now = c.now()
		n, err := c.dec.Decode(frame, t, pass)
		switch {
		case err != nil:
			dropped.Inc()
			// One line a minute at most: a flood of bad frames must not flood the log.
			if now := c.now(); now.Sub(malformedLogged) >= time.Minute {
				malformedLogged = now
				c.log.Debug("dropped malformed frame", "iface", iface, "err", err)
			}
		case n > 0:
			decoded.Inc()
		}
		if now := c.now(); now.Sub(lastStats) >= 10*time.Second {
			lastStats = now
			c.kernelStats()
		}
	}
}

// kernelStats adds the kernel's new drops to the metric.
func (c *Capture) kernelStats() {
	if c.tp == nil {
		return
	}
	_, v3, err := c.tp.SocketStats()
	if err != nil {
		return
	}
	if d := v3.Drops(); d > c.drops {
		c.m.kernelDrops.WithLabelValues(c.cfg.Interface).Add(float64(d - c.drops))
		c.drops = d
	}
}

// Close releases the socket. It is safe to call once, from any goroutine,
// after Run has returned or to make it return.
func (c *Capture) Close() error {
	if c.tp != nil {
		c.tp.Close()
	}
	return nil
}

// repeats remembers which observations were passed on recently.
type repeats struct {
	window time.Duration
	seed   maphash.Seed
	last   map[uint64]time.Time
	now    time.Time
}

const maxRepeats = 8192

func newRepeats(window time.Duration) *repeats {
	return &repeats{window: window, seed: maphash.MakeSeed(), last: make(map[uint64]time.Time)}
}

// fresh reports whether o was not passed on within the window, and records it.
func (r *repeats) fresh(o netscan.Observation) bool {
	if r.window < 0 {
		return true
	}
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(string(o.Source))
	h.Write(o.MAC[:])
	a := o.Addr.As16()
	h.Write(a[:])
	for _, f := range o.Facts {
		h.WriteString(string(f.Key))
		h.WriteByte(0)
		h.WriteString(f.Value)
		h.WriteByte(0)
	}
	k := h.Sum64()
	if t, ok := r.last[k]; ok && r.now.Sub(t) < r.window {
		return false
	}
	if len(r.last) >= maxRepeats {
		for k, t := range r.last {
			if r.now.Sub(t) >= r.window {
				delete(r.last, k)
			}
		}
		if len(r.last) >= maxRepeats {
			clear(r.last)
		}
	}
	r.last[k] = r.now
	return true
}

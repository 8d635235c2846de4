// Package survey runs a one-shot look at a segment: passive listening and
// an active scan at the same time, the observations grouped into devices
// and each device classified. It is what `patchgate scan` prints; the
// appliance's inventory does its own, lasting merge.
package survey

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/netscan"
	"github.com/patchgate/patchgate/netscan/active"
	"github.com/patchgate/patchgate/netscan/fingerprint"
	"github.com/patchgate/patchgate/netscan/passive"
)

// Options configure Run.
type Options struct {
	// Interface to listen on (and to sweep from, unless Active.Interface is set).
	Interface string
	// Passive is how long to listen; 0 means no listening. Listening starts
	// before the active scan and lasts at least this long.
	Passive time.Duration
	// Active configures the scan; nil means no active scan.
	Active *active.Config
	// Classifier classifies devices; nil means fingerprint.New(nil).
	Classifier *fingerprint.Classifier
	// Progress, if set, is called as the active scan goes.
	Progress func(active.Progress)
	// Registry gets the netscan metrics; nil means a private registry.
	Registry prometheus.Registerer
	Log      *slog.Logger
	Now      func() time.Time
}

// Device is what a survey found of one device.
type Device struct {
	MAC       netscan.MAC        `json:"mac"`
	Random    bool               `json:"random_mac,omitempty"`
	Addrs     []netip.Addr       `json:"addrs,omitempty"`
	Hostnames []string           `json:"hostnames,omitempty"`
	Sources   []netscan.Source   `json:"sources"`
	Facts     []netscan.Fact     `json:"facts,omitempty"`
	Class     fingerprint.Result `json:"class"`
}

// Report is the outcome of a survey.
type Report struct {
	Devices      []Device       `json:"devices"`
	Observations int            `json:"observations"`
	Active       active.Summary `json:"active"`
}

// Run listens and scans as opts say and returns the devices found, sorted
// by address. It stops early, with what it has, when ctx is done.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Classifier == nil {
		opts.Classifier = fingerprint.New(nil)
	}
	var (
		mu  sync.Mutex
		obs []netscan.Observation
	)
	collect := func(o netscan.Observation) {
		mu.Lock()
		obs = append(obs, o)
		mu.Unlock()
	}
	var rep Report
	var wg sync.WaitGroup
	var passiveErr error
	listenCtx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	if opts.Passive > 0 {
		if opts.Interface == "" {
			return rep, errors.New("survey: passive listening needs an interface")
		}
		pm, err := passive.NewMetrics(opts.Registry)
		if err != nil {
			return rep, err
		}
		c, err := passive.Open(passive.Config{Interface: opts.Interface}, pm, opts.Log, opts.Now)
		if err != nil {
			return rep, err
		}
		defer c.Close()
		wg.Go(func() { passiveErr = c.Run(listenCtx, collect) })
	}
	deadline := time.NewTimer(opts.Passive)
	defer deadline.Stop()
	var scanErr error
	if opts.Active != nil {
		cfg := *opts.Active
		if cfg.Interface == "" {
			cfg.Interface = opts.Interface
		}
		am, err := active.NewMetrics(opts.Registry)
		if err != nil {
			return rep, err
		}
		s, err := active.New(cfg, am, opts.Log, opts.Now)
		if err != nil {
			return rep, err
		}
		rep.Active, scanErr = s.Scan(ctx, collect, opts.Progress)
	}
	if opts.Passive > 0 {
		select {
		case <-deadline.C:
		case <-ctx.Done():
		}
	}
	stopListening()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	rep.Observations = len(obs)
	rep.Devices = Group(obs)
	for i := range rep.Devices {
		d := &rep.Devices[i]
		d.Class = opts.Classifier.Classify(d.MAC, d.Facts)
	}
	if err := errors.Join(scanErr, passiveErr); err != nil && ctx.Err() == nil {
		return rep, err
	}
	return rep, nil
}

// Group merges observations into devices: by MAC where one is known and
// the MAC is unicast; observations without a MAC join the device holding
// their address, or make a device of their own.
func Group(obs []netscan.Observation) []Device {
	byMAC := map[netscan.MAC]*Device{}
	byAddr := map[netip.Addr]*Device{}
	var order []*Device
	add := func(d *Device, o netscan.Observation) {
		if o.Addr.IsValid() && !slices.Contains(d.Addrs, o.Addr) {
			d.Addrs = append(d.Addrs, o.Addr)
		}
		if !slices.Contains(d.Sources, o.Source) {
			d.Sources = append(d.Sources, o.Source)
		}
		for _, f := range o.Facts {
			if !slices.Contains(d.Facts, f) {
				d.Facts = append(d.Facts, f)
			}
			if f.Key == netscan.KeyHostname && !slices.Contains(d.Hostnames, f.Value) {
				d.Hostnames = append(d.Hostnames, f.Value)
			}
		}
	}
	for _, o := range obs {
		if !o.MAC.Unicast() {
			continue
		}
		d, ok := byMAC[o.MAC]
		if !ok {
			d = &Device{MAC: o.MAC, Random: o.MAC.LocallyAdministered()}
			byMAC[o.MAC] = d
			order = append(order, d)
		}
		add(d, o)
		if o.Addr.IsValid() && byAddr[o.Addr] == nil {
			byAddr[o.Addr] = d
		}
	}
	for _, o := range obs {
		if o.MAC.Unicast() {
			continue
		}
		if !o.Addr.IsValid() {
			continue
		}
		d, ok := byAddr[o.Addr]
		if !ok {
			d = &Device{}
			byAddr[o.Addr] = d
			order = append(order, d)
		}
		add(d, o)
	}
	out := make([]Device, 0, len(order))
	for _, d := range order {
		slices.SortFunc(d.Addrs, netip.Addr.Compare)
		netscan.SortFacts(d.Facts)
		slices.Sort(d.Sources)
		out = append(out, *d)
	}
	slices.SortStableFunc(out, func(a, b Device) int {
		switch {
		case len(a.Addrs) == 0 && len(b.Addrs) == 0:
			return 0
		case len(a.Addrs) == 0:
			return 1
		case len(b.Addrs) == 0:
			return -1
		}
		return a.Addrs[0].Compare(b.Addrs[0])
	})
	return out
}

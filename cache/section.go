package cache

import (
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the cache section of patchgate.yaml: the update cache's store.
type Section struct {
	// Dir holds the objects (empty: STATE/cache).
	Dir string `yaml:"dir"`
	// Quota bounds the stored bytes; least recently used objects no rollout pins are
	// evicted past it (0: no quota).
	Quota conf.ByteSize `yaml:"quota"`
	// ScrubRate is how fast the scrubber re-hashes stored objects (0: never).
	ScrubRate conf.Rate `yaml:"scrub_rate"`
	// ScrubPause is the rest between two scrub passes.
	ScrubPause conf.Duration `yaml:"scrub_pause"`
	// StallTimeout gives up an upstream attempt that sent nothing for this long (the
	// next attempt resumes with a Range request).
	StallTimeout conf.Duration `yaml:"stall_timeout"`
}

// Validate checks the cache section.
func (c Section) Validate(key string, ps *conf.Problems) {
	if c.Quota < 0 {
		ps.Addf(key+".quota", "must not be negative, got %s", c.Quota)
	}
	if c.ScrubRate < 0 {
		ps.Addf(key+".scrub_rate", "must not be negative, got %s", c.ScrubRate)
	}
	if c.ScrubPause.D() < time.Minute {
		ps.Addf(key+".scrub_pause", "must be at least 1m, got %s", c.ScrubPause.D())
	}
	if c.StallTimeout.D() < time.Second {
		ps.Addf(key+".stall_timeout", "must be at least 1s, got %s", c.StallTimeout.D())
	}
}

// DefaultSection is the cache section of a config that leaves it out.
func DefaultSection() Section {
	return Section{Quota: 20 << 30, ScrubRate: 4 << 20, ScrubPause: conf.Duration(time.Hour),
		StallTimeout: conf.Duration(60 * time.Second)}
}

// Config is the store's configuration for section c; defaultDir is the directory used
// when c.Dir is empty (the wiring passes STATE/cache).
func (c Section) Config(defaultDir string) Config {
	dir := c.Dir
	if dir == "" {
		dir = defaultDir
	}
	return Config{
		Dir:                 dir,
		QuotaBytes:          int64(c.Quota),
		ScrubBytesPerSecond: int64(c.ScrubRate),
		ScrubPause:          c.ScrubPause.D(),
		StallTimeout:        c.StallTimeout.D(),
	}
}

package config

import "time"

// Cache is the update cache's store.
type Cache struct {
	// Dir holds the objects (empty: STATE/cache).
	Dir string `yaml:"dir"`
	// Quota bounds the stored bytes; least recently used objects no rollout pins are
	// evicted past it (0: no quota).
	Quota ByteSize `yaml:"quota"`
	// ScrubRate is how fast the scrubber re-hashes stored objects (0: never).
	ScrubRate Rate `yaml:"scrub_rate"`
	// ScrubPause is the rest between two scrub passes.
	ScrubPause Duration `yaml:"scrub_pause"`
	// StallTimeout gives up an upstream attempt that sent nothing for this long (the
	// next attempt resumes with a Range request).
	StallTimeout Duration `yaml:"stall_timeout"`
}

// Validate checks the cache section.
func (c Cache) Validate(key string, ps *Problems) {
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

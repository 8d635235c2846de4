package config

import "time"

// Audit configures the audit trail. Records are kept at least six years; nothing here
// can shorten that.
type Audit struct {
	// Dir holds audit.log, checkpoints.log and the checkpoint key; empty means
	// <state.dir>/audit.
	Dir             string   `yaml:"dir"`
	CheckpointEvery Duration `yaml:"checkpoint_every"` // how often a signed checkpoint is made while records come in
}

// Path returns the audit directory.
func (a Audit) Path(s State) string {
	if a.Dir != "" {
		return a.Dir
	}
	return s.Path("audit")
}

// Validate checks the audit section.
func (a Audit) Validate(key string, ps *Problems) {
	if d := a.CheckpointEvery.D(); d < time.Minute || d > 24*time.Hour {
		ps.Addf(key+".checkpoint_every", "must be between 1m and 24h, got %s", d)
	}
}

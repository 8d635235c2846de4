package audit

import (
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the audit section of patchgate.yaml: it configures the audit trail. Records are kept at least six years; nothing here
// can shorten that.
type Section struct {
	// Dir holds audit.log, checkpoints.log and the checkpoint key; empty means
	// <state.dir>/audit.
	Dir             string        `yaml:"dir"`
	CheckpointEvery conf.Duration `yaml:"checkpoint_every"` // how often a signed checkpoint is made while records come in
}

// Path returns the audit directory: Dir, or defaultDir when Dir is empty (the wiring
// passes STATE/audit).
func (a Section) Path(defaultDir string) string {
	if a.Dir != "" {
		return a.Dir
	}
	return defaultDir
}

// Validate checks the audit section.
func (a Section) Validate(key string, ps *conf.Problems) {
	if d := a.CheckpointEvery.D(); d < time.Minute || d > 24*time.Hour {
		ps.Addf(key+".checkpoint_every", "must be between 1m and 24h, got %s", d)
	}
}

// DefaultSection is the audit section of a config that leaves it out.
func DefaultSection() Section { return Section{CheckpointEvery: conf.Duration(time.Hour)} }

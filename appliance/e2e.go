package appliance

import "github.com/patchgate/patchgate/appliance/rollout"

// Rollout returns the System's rollout engine (nil before New built it), for the
// end-to-end tests (test/e2e) that drive releases and rollouts without the admin API's
// login.
func (s *System) Rollout() *rollout.Engine { return s.rollout }

package appliance

import (
	"context"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/rollout"
)

// Rollout returns the System's rollout engine (nil before New built it), for the
// end-to-end tests (test/e2e) that drive releases and rollouts without the admin API's
// login.
func (s *System) Rollout() *rollout.Engine { return s.rollout }

// Auth returns the System's accounts and tokens, for the tests outside this package
// (test/lab) that read the admin API with a token of their own.
func (s *System) Auth() *auth.Authority { return s.auth }

// Start runs s in the background and waits until it is ready, at most within; stop ends
// Run, waits for it and closes s. For the tests that run a whole System (here, cmd/,
// test/); the daemon calls Run.
func (s *System) Start(within time.Duration) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop = func() { cancel(); <-done; s.Close() }
	for deadline := time.Now().Add(within); !s.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("appliance: not ready within %s", within)
		}
	}
	return stop, nil
}

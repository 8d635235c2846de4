package appliance

import (
	"context"

	"github.com/patchgate/patchgate/health"
)

// Service is one long-running part of the appliance.
//
// Run blocks until ctx is cancelled, then releases what it holds and returns nil; it
// returns early only with an error that should stop the appliance. Ready reports whether
// the service is doing its job (for /readyz and systemd's READY=1); it may be called
// from any goroutine at any time, also before Run. Health lists current problems, most
// serious first where it can; a service can be ready and still have warnings.
type Service interface {
	Name() string
	Run(ctx context.Context) error
	Ready() bool
	Health() []health.Problem
}

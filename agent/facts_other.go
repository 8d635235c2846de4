//go:build !linux && !windows && !darwin

package agent

import (
	"context"

	"github.com/patchgate/patchgate/agentapi"
)

// platformFacts knows nothing more on other systems.
func platformFacts(context.Context, *agentapi.Facts) {}

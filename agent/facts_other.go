//go:build !linux && !windows && !darwin

package agent

import "context"

// platformFacts knows nothing more on other systems.
func platformFacts(context.Context, *Facts) {}

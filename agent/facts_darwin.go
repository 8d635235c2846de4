package agent

import (
	"context"
	"strings"

	"github.com/patchgate/patchgate/agentapi"
)

// platformFacts reads sw_vers. Installed software is not listed: reading it is not
// cheap on macOS.
func platformFacts(ctx context.Context, f *agentapi.Facts) {
	name := strings.TrimSpace(string(output(ctx, "sw_vers", "-productName")))
	ver := strings.TrimSpace(string(output(ctx, "sw_vers", "-productVersion")))
	f.OSVersion = strings.TrimSpace(name + " " + ver)
	f.OSBuild = string(output(ctx, "sw_vers", "-buildVersion"))
}

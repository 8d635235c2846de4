package agent

import (
	"context"
	"regexp"

	"github.com/patchgate/patchgate/agentapi"
)

var (
	winVer   = regexp.MustCompile(`\[Version ([0-9.]+)\]`)
	winBuild = regexp.MustCompile(`^\d+\.\d+\.(.*)$`)
)

// platformFacts reads the version from `cmd /c ver` ("Microsoft Windows [Version
// 10.0.26100.2314]": build 26100.2314). Installed software is not listed: reading it
// is not cheap on Windows.
func platformFacts(ctx context.Context, f *agentapi.Facts) {
	out := output(ctx, "cmd", "/c", "ver")
	m := winVer.FindSubmatch(out)
	if m == nil {
		return
	}
	v := string(m[1])
	f.OSVersion = "Windows " + v
	// 10.0.BUILD.UBR -> BUILD.UBR
	if parts := winBuild.FindStringSubmatch(v); parts != nil {
		f.OSBuild = parts[1]
	}
}

package agent

import (
	"context"
	"os"

	"github.com/patchgate/patchgate/agentapi"
)

// platformFacts reads /etc/os-release, the kernel release, the DMI serial (root only)
// and the package list from dpkg-query or rpm.
func platformFacts(ctx context.Context, f *agentapi.Facts) {
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		f.OSVersion = osRelease(data)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		f.OSBuild = string(data)
	}
	if data, err := os.ReadFile("/sys/class/dmi/id/product_serial"); err == nil {
		f.Serial = string(data)
	}
	if out := output(ctx, "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"); out != nil {
		f.Packages = parsePackages(out)
	} else if out := output(ctx, "rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"); out != nil {
		f.Packages = parsePackages(out)
	}
}

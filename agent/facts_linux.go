package agent

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"

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

// osRelease returns PRETTY_NAME (else NAME VERSION) from os-release(5) content.
func osRelease(data []byte) string {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `'"`)
		}
		vals[k] = v
	}
	if p := vals["PRETTY_NAME"]; p != "" {
		return p
	}
	return strings.TrimSpace(vals["NAME"] + " " + vals["VERSION"])
}

package agent

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// Limits the appliance puts on facts (appliance/rollout/README.md).
const (
	maxPackages  = 5000
	maxFactBytes = 200
)

// GatherFacts collects what the agent reports at check-in: hostname, OS, version and
// build, architecture, serial number where readable, and the installed packages
// where that is cheap (dpkg-query or rpm on Linux; not elsewhere). Anything it cannot
// read is left empty. version is the agent's own version.
func GatherFacts(ctx context.Context, version string) agentapi.Facts {
	host, _ := os.Hostname()
	f := agentapi.Facts{Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: version}
	if f.Hostname == "" {
		f.Hostname = "unknown"
	}
	platformFacts(ctx, &f)
	f.OSVersion, f.OSBuild, f.Serial = clip(f.OSVersion), clip(f.OSBuild), clip(f.Serial)
	return f
}

// clip cuts s to the appliance's limit on a fact, on a rune boundary.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxFactBytes {
		return s
	}
	s = s[:maxFactBytes]
	for len(s) > 0 && !isRuneStart(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) > 0 { // drop the cut rune's first byte too
		s = s[:len(s)-1]
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// output runs a program for at most 30s and returns its standard output, or nil.
func output(ctx context.Context, name string, args ...string) []byte {
	if _, err := exec.LookPath(name); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return nil
	}
	return out
}

// parsePackages reads "name<TAB>version" lines, at most maxPackages of them, skipping
// lines that would break the appliance's limits.
func parsePackages(out []byte) []agentapi.Package {
	var pkgs []agentapi.Package
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() && len(pkgs) < maxPackages {
		name, version, ok := strings.Cut(sc.Text(), "\t")
		name, version = strings.TrimSpace(name), strings.TrimSpace(version)
		if !ok || name == "" || len(name) > maxFactBytes || len(version) > maxFactBytes {
			continue
		}
		pkgs = append(pkgs, agentapi.Package{Name: name, Version: version})
	}
	return pkgs
}

// osRelease returns PRETTY_NAME (else NAME VERSION) from os-release(5) content. Only
// Linux reads os-release; it lives here so its test and fuzz target build everywhere.
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

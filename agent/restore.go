package agent

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// Restore points, made right before an install:
//
//   - Windows: PowerShell's Checkpoint-Computer (System Restore must be on for the
//     system drive; Windows makes at most one per 24 h by default and then says so);
//   - macOS: tmutil localsnapshot (an APFS local snapshot);
//   - Linux: restore_point_command when configured (a snapper, btrfs or LVM hook),
//     else snapper when /usr/bin/snapper and its root config exist, else unavailable.
//
// The description is fixed text: nothing the appliance sends reaches a command line.
const restoreTimeout = 10 * time.Minute

// Paths of the programs used; variables so tests can point them elsewhere.
var (
	powershellPath    = `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`
	tmutilPath        = "/usr/bin/tmutil"
	snapperPath       = "/usr/bin/snapper"
	snapperRootConfig = "/etc/snapper/configs/root"
)

// restoreCommand is how a restore point is made on goos: the method's name and argv,
// or no argv when there is none.
func restoreCommand(goos string, hook []string, exists func(string) bool) (string, []string) {
	switch {
	case len(hook) > 0:
		return "restore_point_command " + hook[0], hook
	case goos == "windows":
		return "Checkpoint-Computer", []string{powershellPath, "-NoProfile", "-NonInteractive", "-Command",
			"Checkpoint-Computer -Description 'Patchgate update' -RestorePointType MODIFY_SETTINGS -ErrorAction Stop"}
	case goos == "darwin":
		return "tmutil localsnapshot", []string{tmutilPath, "localsnapshot"}
	case goos == "linux" && exists(snapperPath) && exists(snapperRootConfig):
		return "snapper", []string{snapperPath, "--no-dbus", "create", "--type", "single",
			"--cleanup-algorithm", "number", "--description", "patchgate update"}
	}
	return "", nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// restorePoint makes the restore point when the config allows (restore_point: auto).
func (a *Agent) restorePoint(ctx context.Context, goos string, d commandData) agentapi.RestorePoint {
	if a.cfg.RestorePoint == "off" {
		return agentapi.RestorePoint{Status: agentapi.RestoreDisabled, Detail: "restore_point: off in the agent's config"}
	}
	method, argv := restoreCommand(goos, a.cfg.RestorePointCommand, fileExists)
	if len(argv) == 0 {
		return agentapi.RestorePoint{Status: agentapi.RestoreUnavailable,
			Detail: "no restore point mechanism on this device (set restore_point_command for btrfs or LVM)"}
	}
	rctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	r := run(rctx, argv, d, a.cfg.StateDir)
	rp := agentapi.RestorePoint{Status: agentapi.RestoreCreated, Method: method}
	if r.Err != nil {
		rp.Status = agentapi.RestoreFailed
		rp.Detail = r.Err.Error()
		if out := strings.TrimSpace(lastLine(r.LogTail)); out != "" {
			rp.Detail += ": " + truncate(out, 300)
		}
	}
	return rp
}

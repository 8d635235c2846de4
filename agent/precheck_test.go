package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/agent"
	"github.com/patchgate/patchgate/agentapi"
)

func findCheck(cs []agentapi.Check, name string) (agentapi.Check, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return agentapi.Check{}, false
}

// TestAgentPostponesOnFailedPrecheck: a failed pre-check is reported as postponed with
// its values, nothing is installed (nor, for free space, downloaded), the postponement
// is reported once however often the agent looks again, and once the device is ready
// the install runs and its outcome carries the checks that passed.
func TestAgentPostponesOnFailedPrecheck(t *testing.T) {
	onBattery := map[string]map[string]string{
		"AC":   {"type": "Mains", "online": "0"},
		"BAT0": {"type": "Battery", "capacity": "23", "status": "Discharging"},
	}
	tests := []struct {
		name      string
		free      uint64
		sysfs     map[string]map[string]string
		precheck  string // exit code of the precheck command ("" none)
		check     string // the failed check's name
		value     string // its value
		downloads bool   // whether the target was fetched before the postponement
	}{
		{name: "not enough free space", free: 1 << 20, check: agentapi.CheckDiskFree, value: "1048576"},
		{name: "free space unknown", free: 0, check: agentapi.CheckDiskFree, value: "unknown"},
		{name: "battery low", free: 1 << 40, sysfs: onBattery, check: agentapi.CheckPower, value: "battery 23%", downloads: true},
		{name: "check command says busy", free: 1 << 40, precheck: "3", check: agentapi.CheckCommand, value: "exit 3", downloads: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "ran.log")
			install := script(t, dir, "install.sh", log, "0")
			var pre string
			if tc.precheck != "" {
				pre = script(t, dir, "busy.sh", filepath.Join(dir, "pre.log"), tc.precheck)
			}
			custom := signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install, "{file}"}, MinFreeBytes: 1 << 30}})
			e := newEnvWith(t, []byte("update"), custom, func(c *agent.Config) {
				c.AllowCommands = []string{install}
				c.PostponeFor = agent.Duration(2 * time.Minute)
				if tc.sysfs != nil {
					c.PowerSupplyDir = agent.FakeSysfs(t, tc.sysfs)
				}
				if pre != "" {
					c.PrecheckCommand = []string{pre}
				}
			})
			free := tc.free
			e.free = func(string) (uint64, error) {
				if free == 0 {
					return 0, os.ErrPermission
				}
				return free, nil
			}
			e.start(t)
			e.app.setOffers(offer(41, "pkgs/tool_1.1.deb", true, true))
			if next := e.cycle(t); next != 2*time.Minute {
				t.Errorf("next poll in %s, want the postponement 2m", next)
			}
			e.cycle(t) // the same result is not reported again
			_, outcomes, gets := e.app.snapshot()
			if len(outcomes) != 1 || outcomes[0].Status != agentapi.OutcomePostponed {
				t.Fatalf("outcomes = %+v, want one postponement", outcomes)
			}
			o := outcomes[0]
			if !strings.HasPrefix(o.Detail, agentapi.DetailPrecheck+tc.check+": ") || o.ExitCode != nil {
				t.Errorf("detail %q exit %v, want %q... and no exit code", o.Detail, o.ExitCode, agentapi.DetailPrecheck+tc.check)
			}
			c, ok := findCheck(o.Checks, tc.check)
			if !ok || c.OK || c.Value != tc.value || c.Need == "" {
				t.Errorf("check %s = %+v (found %v), want failed with value %q and a need", tc.check, c, ok, tc.value)
			}
			if app, ok := findCheck(o.Checks, agentapi.CheckAppliance); !ok || !app.OK {
				t.Errorf("appliance check = %+v, want passed", app)
			}
			if (len(gets) > 0) != tc.downloads {
				t.Errorf("target GETs %q, want downloaded=%v", gets, tc.downloads)
			}
			if ran := lines(t, log); len(ran) != 0 {
				t.Errorf("installer ran while postponed: %q", ran)
			}

			// The device is ready now: it installs, and the outcome lists the checks.
			e.cfg.PowerSupplyDir = agent.FakeSysfs(t, map[string]map[string]string{"AC": {"type": "Mains", "online": "1"}, "BAT0": {"type": "Battery", "capacity": "23"}})
			e.cfg.PrecheckCommand = nil
			free = 1 << 40
			e.start(t)
			e.cycle(t)
			_, outcomes, _ = e.app.snapshot()
			if len(outcomes) != 2 || outcomes[1].Status != agentapi.OutcomeSucceeded {
				t.Fatalf("outcomes = %+v, want the postponement then a success", outcomes)
			}
			if p, ok := findCheck(outcomes[1].Checks, agentapi.CheckPower); !ok || !p.OK || p.Value != "AC, battery 23%" {
				t.Errorf("power check in the success = %+v, want passed on AC", p)
			}
			if d, ok := findCheck(outcomes[1].Checks, agentapi.CheckDiskFree); !ok || !d.OK || d.Value != "1099511627776" {
				t.Errorf("disk check in the success = %+v, want passed with the free bytes", d)
			}
		})
	}
}

// TestAgentRestorePoint: the hook runs before the install and its result is reported;
// a release requiring a restore point stops with a clear failed outcome when it fails.
func TestAgentRestorePoint(t *testing.T) {
	tests := []struct {
		name     string
		require  bool
		hookExit string
		status   string
		install  bool
		outcome  string
	}{
		{name: "made, not required", hookExit: "0", status: agentapi.RestoreCreated, install: true, outcome: agentapi.OutcomeSucceeded},
		{name: "failed, not required", hookExit: "1", status: agentapi.RestoreFailed, install: true, outcome: agentapi.OutcomeSucceeded},
		{name: "made, required", require: true, hookExit: "0", status: agentapi.RestoreCreated, install: true, outcome: agentapi.OutcomeSucceeded},
		{name: "failed, required", require: true, hookExit: "1", status: agentapi.RestoreFailed, outcome: agentapi.OutcomeFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "ran.log")
			install := script(t, dir, "install.sh", log, "0")
			hook := script(t, dir, "snapshot.sh", log, tc.hookExit)
			custom := signed(t, map[string]agentapi.Step{runtime.GOOS: {Command: []string{install, "{file}"}, RequireRestorePoint: tc.require}})
			e := newEnvWith(t, []byte("update"), custom, func(c *agent.Config) {
				c.AllowCommands = []string{install}
				c.RestorePoint, c.RestorePointCommand = "auto", []string{hook, "pre"}
			})
			e.app.setOffers(offer(51, "pkgs/tool_1.1.deb", true, true))
			e.agent.Cycle(context.Background())
			_, outcomes, _ := e.app.snapshot()
			if len(outcomes) != 1 || outcomes[0].Status != tc.outcome || outcomes[0].RestorePoint == nil {
				t.Fatalf("outcomes = %+v, want one %s with a restore point", outcomes, tc.outcome)
			}
			rp := outcomes[0].RestorePoint
			if rp.Status != tc.status || !strings.HasPrefix(rp.Method, "restore_point_command ") {
				t.Errorf("restore point = %+v, want %s by the hook", rp, tc.status)
			}
			ran := lines(t, log)
			if len(ran) == 0 || ran[0] != "snapshot.sh pre" {
				t.Errorf("commands run = %q, want the snapshot hook first", ran)
			}
			if installed := len(ran) == 2; installed != tc.install {
				t.Errorf("commands run = %q, want install=%v", ran, tc.install)
			}
			if !tc.install && !strings.HasPrefix(outcomes[0].Detail, agentapi.DetailRestorePoint+"the release requires one and it is failed") {
				t.Errorf("detail = %q, want the restore point named", outcomes[0].Detail)
			}
		})
	}
}

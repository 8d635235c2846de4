package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// Pre-check defaults.
const (
	DefaultMinBatteryPercent = 40
	DefaultPowerSupplyDir    = "/sys/class/power_supply"
	DefaultPostpone          = 15 * time.Minute
	// MaxClockSkew is how far the endpoint's clock may be from the appliance's: TUF
	// judges metadata expiry on the endpoint's clock, so beyond it nothing is done.
	MaxClockSkew           = time.Hour
	precheckCommandTimeout = 2 * time.Minute
)

// stage is when pre-checks run: before the download (free space, appliance) or
// right before the install (all of them).
type stage int

const (
	beforeDownload stage = iota
	beforeInstall
)

// prechecks runs the pre-checks of st and returns every result with its values.
func (a *Agent) prechecks(ctx context.Context, off agentapi.Offer, ps []plan, st stage) []agentapi.Check {
	var cs []agentapi.Check
	if c, ok := a.diskCheck(ps); ok {
		cs = append(cs, c)
	}
	cs = append(cs, a.applianceCheck(ctx))
	if st == beforeDownload {
		return cs
	}
	if min := a.cfg.minBattery(); min > 0 {
		p, err := a.power(a.cfg.powerSupplyDir())
		cs = append(cs, powerCheck(p, err, min))
	}
	if len(a.cfg.PrecheckCommand) > 0 {
		cs = append(cs, a.commandCheck(ctx, off, ps))
	}
	return cs
}

// clockCheck compares the endpoint's clock with the appliance's (the Date of its last
// answer). It is reported only when the endpoint's clock is off by more than
// MaxClockSkew: then TUF's expiry checks cannot be trusted either way, and the agent
// postpones rather than failing every release as expired.
func (a *Agent) clockCheck() (agentapi.Check, bool) {
	skew, ok := a.client.clockSkew()
	if !ok || (skew <= MaxClockSkew && skew >= -MaxClockSkew) {
		return agentapi.Check{}, false
	}
	dir := "ahead of"
	if skew < 0 {
		dir, skew = "behind", -skew
	}
	return agentapi.Check{Name: agentapi.CheckClock, Value: fmt.Sprintf("%s %s the appliance", skew.Round(time.Second), dir),
		Need: "within " + MaxClockSkew.String(), Detail: "set the endpoint's clock (NTP); nothing is installed until it is right"}, true
}

// diskCheck compares the free space on state_dir's file system with the largest
// min_free_bytes of the instructions plus what is still to download. ok is false
// when no instruction states a need.
func (a *Agent) diskCheck(ps []plan) (agentapi.Check, bool) {
	var minFree, toFetch int64
	for _, p := range ps {
		if p.step != nil {
			minFree = max(minFree, p.step.MinFreeBytes)
		}
		toFetch += a.remaining(p.info)
	}
	if minFree == 0 {
		return agentapi.Check{}, false
	}
	need := minFree + toFetch
	c := agentapi.Check{Name: agentapi.CheckDiskFree, Need: strconv.FormatInt(need, 10)}
	free, err := a.freeSpace(a.cfg.StateDir)
	if err != nil {
		c.Value, c.Detail = "unknown", fmt.Sprintf("free space of %s unknown: %v", a.cfg.StateDir, err)
		return c, true
	}
	c.Value, c.OK = strconv.FormatUint(free, 10), free >= uint64(need)
	if !c.OK {
		c.Detail = fmt.Sprintf("%s has %d bytes free, the release needs %d (min_free_bytes %d plus %d to download)",
			a.cfg.StateDir, free, need, minFree, toFetch)
	}
	return c, true
}

// applianceCheck asks the appliance for the offers again: it answers, so reports and
// downloads can go through.
func (a *Agent) applianceCheck(ctx context.Context) agentapi.Check {
	c := agentapi.Check{Name: agentapi.CheckAppliance, Need: "answers"}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := a.clock.Now()
	err := a.client.call(cctx, "reachable", http.MethodGet, "/agent/v1/deployments", nil, nil, true)
	if err != nil {
		c.Value, c.Detail = "unreachable", err.Error()
		return c
	}
	c.OK, c.Value = true, "answered in "+a.clock.Now().Sub(start).Round(time.Millisecond).String()
	return c
}

// commandCheck runs precheck_command (e.g. "no interactive session in use"): exit 0
// passes.
func (a *Agent) commandCheck(ctx context.Context, off agentapi.Offer, ps []plan) agentapi.Check {
	c := agentapi.Check{Name: agentapi.CheckCommand, Need: "exit 0"}
	cctx, cancel := context.WithTimeout(ctx, precheckCommandTimeout)
	defer cancel()
	d := commandData{Repo: off.Repo, Release: off.Release.Name, Version: off.Release.Version, Deployment: off.ID}
	if len(ps) > 0 {
		d.File, d.Target = ps[0].file, ps[0].target.Path
	}
	r := run(cctx, a.cfg.PrecheckCommand, d, a.cfg.StateDir)
	c.OK, c.Value = r.Err == nil, "exit "+strconv.Itoa(r.ExitCode)
	if r.Err != nil {
		c.Detail = truncate(strings.TrimSpace(lastLine(r.LogTail)), 200)
		if c.Detail == "" {
			c.Detail = r.Err.Error()
		}
	}
	return c
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// failedChecks summarizes the failed checks, "" when all passed.
func failedChecks(cs []agentapi.Check) string {
	var bad []string
	for _, c := range cs {
		if c.OK {
			continue
		}
		s := fmt.Sprintf("%s: %s (need %s)", c.Name, c.Value, c.Need)
		if c.Detail != "" {
			s += ": " + c.Detail
		}
		bad = append(bad, s)
	}
	return strings.Join(bad, "; ")
}

// postpone reports a failed pre-check as a postponed outcome (once per distinct
// result, so a laptop on battery does not report every poll) and says when to look
// again: postpone_for, or sooner when the appliance asks. Nothing is counted as a
// failed install; the appliance keeps the deployment open.
func (a *Agent) postpone(ctx context.Context, log *slog.Logger, off agentapi.Offer, cs []agentapi.Check) (time.Duration, error) {
	detail := agentapi.DetailPrecheck + failedChecks(cs)
	wait := a.cfg.postponeFor()
	if r := time.Duration(off.RetryAfterSeconds) * time.Second; r > 0 {
		wait = min(wait, r)
	}
	a.mu.Lock()
	same := a.postponed[off.ID] == detail
	a.mu.Unlock()
	if same {
		return wait, nil
	}
	log.Info("install postponed: a pre-check failed", "detail", detail, "retry_in", wait)
	_, err := a.client.outcome(ctx, off.ID, agentapi.OutcomeRequest{Status: agentapi.OutcomePostponed, Detail: detail, Checks: cs})
	if err != nil && statusOf(err) != http.StatusConflict && statusOf(err) != http.StatusNotFound {
		return wait, err
	}
	a.mu.Lock()
	a.postponed[off.ID] = detail
	a.mu.Unlock()
	return wait, nil
}

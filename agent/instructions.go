package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/tuf"
)

// plan is how one target of an offer is installed on this device: by the step of the
// install instructions signed with it, or (step nil, only with local_install) by the
// local install command.
type plan struct {
	target agentapi.OfferTarget
	info   tuf.TargetInfo // verified by TUF: Custom holds the signed instructions
	step   *agentapi.Step
	file   string // the verified download, once fetched
}

// refusal is a reason not to go on with an offer; it is reported as the offer's
// failed outcome (detail starts with DetailRefused or DetailPrecheck) and no command
// runs.
type refusal struct{ detail string }

func (r *refusal) Error() string { return "agent: " + r.detail }

func refused(format string, args ...any) *refusal {
	return &refusal{agentapi.DetailRefused + fmt.Sprintf(format, args...)}
}

// stepFor reads the install step for this OS out of a target's verified metadata, and
// refuses instructions that are missing, malformed, silent about this OS or that name
// a program allow_commands does not list.
func (a *Agent) stepFor(ti tuf.TargetInfo) (*agentapi.Step, error) {
	in, err := agentapi.ParseInstructions(ti.Custom)
	switch {
	case errors.Is(err, agentapi.ErrNoInstructions) && a.cfg.LocalInstall:
		return nil, nil
	case errors.Is(err, agentapi.ErrNoInstructions):
		return nil, refused("%s: %v (this agent requires them; local_install is off)", ti.Path, err)
	case err != nil:
		return nil, refused("%s: %v", ti.Path, err)
	}
	step, err := in.For(runtime.GOOS)
	if err != nil {
		return nil, refused("%s: %v", ti.Path, err)
	}
	for _, c := range []struct {
		name string
		argv []string
	}{{"command", step.Command}, {"check", step.Check}} {
		if len(c.argv) > 0 && !a.allowed(c.argv[0]) {
			return nil, refused("%s: the signed %s runs %s, which allow_commands does not list", ti.Path, c.name, c.argv[0])
		}
	}
	return &step, nil
}

// allowed reports whether allow_commands lists program (exactly; on Windows without
// regard to case, as its file names are).
func (a *Agent) allowed(program string) bool {
	return slices.ContainsFunc(a.cfg.AllowCommands, func(p string) bool {
		if runtime.GOOS == "windows" {
			return strings.EqualFold(p, program)
		}
		return p == program
	})
}

// plans verifies each target's metadata and decides how it is installed, before
// anything is downloaded. Targets with signed instructions and targets without
// (local_install) are not mixed in one offer.
func (a *Agent) plans(ctx context.Context, tr *trust, off agentapi.Offer) ([]plan, error) {
	var ps []plan
	local := 0
	for _, t := range off.Targets {
		ti, err := tr.targetInfo(ctx, t.Path)
		if err != nil {
			return nil, err
		}
		step, err := a.stepFor(ti)
		if err != nil {
			return nil, err
		}
		if step == nil {
			local++
		}
		ps = append(ps, plan{target: t, info: ti, step: step})
	}
	if local > 0 && local < len(ps) {
		return nil, refused("the offer mixes targets with and without signed install instructions")
	}
	return ps, nil
}

// remaining is how many bytes of a target are still to be downloaded.
func (a *Agent) remaining(ti tuf.TargetInfo) int64 {
	final := filepath.Join(a.downloadDir(), fileKey(ti))
	if fi, err := os.Stat(final); err == nil && fi.Size() == ti.Length {
		return 0
	}
	if fi, err := os.Stat(final + ".part"); err == nil && fi.Size() <= ti.Length {
		return ti.Length - fi.Size()
	}
	return ti.Length
}

// action is one install to run: its check (may be empty) and command, expanded.
type action struct {
	target  string
	check   []string
	command []string
	reboot  bool
	data    commandData
}

// actions turns the plans into the commands to run: one per target for signed
// instructions ({file} replaced by its download), or the local command once for the
// whole offer.
func (a *Agent) actions(off agentapi.Offer, ps []plan) ([]action, error) {
	files := make([]string, len(ps))
	for i, p := range ps {
		files[i] = p.file
	}
	data := func(p plan) commandData {
		return commandData{File: p.file, Files: files, Repo: off.Repo, Target: p.target.Path,
			Release: off.Release.Name, Version: off.Release.Version, Deployment: off.ID}
	}
	if ps[0].step == nil { // local_install
		d := data(ps[0])
		cmd, err := expand(a.cfg.Install, d)
		if err != nil {
			return nil, fmt.Errorf("install: %w", err)
		}
		var check []string
		if len(a.cfg.Check) > 0 {
			if check, err = expand(a.cfg.Check, d); err != nil {
				return nil, fmt.Errorf("check: %w", err)
			}
		}
		return []action{{target: d.Target, check: check, command: cmd, data: d}}, nil
	}
	var acts []action
	for _, p := range ps {
		acts = append(acts, action{target: p.target.Path, data: data(p), reboot: p.step.Reboot,
			check:   agentapi.Expand(p.step.Check, p.file),
			command: agentapi.Expand(p.step.Command, p.file)})
	}
	return acts, nil
}

// joinTails keeps the last maxLogTail bytes of the outputs of several commands.
func joinTails(tails []string) string {
	s := strings.Join(tails, "")
	if len(s) <= maxLogTail {
		return s
	}
	t := &tailBuffer{max: maxLogTail}
	t.Write([]byte(s))
	return t.String()
}

package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	agentpkg "github.com/patchgate/patchgate/packaging/agent"
)

// Where `service install` puts things on each OS (paths as seen on the target system,
// --root prefixes them).
const (
	unitPath       = "/etc/systemd/system/patchgate-agent.service" // the admin's units: overrides a package's
	unitName       = "patchgate-agent.service"
	linuxConfigDir = "/etc/patchgate-agent"
	linuxStateDir  = "/var/lib/patchgate-agent"
	plistPath      = "/Library/LaunchDaemons/com.patchgate.agent.plist"
	plistLabel     = "com.patchgate.agent"
	macConfigDir   = "/Library/Application Support/Patchgate"
	// The paths the packaged unit and plist name, replaced by --binary.
	unitExec  = "ExecStart=/usr/bin/patchgate-agent "
	plistExec = "<string>/usr/local/bin/patchgate-agent</string>"
	// serviceName is the Windows service's name.
	serviceName = "patchgate-agent"
)

// serviceOpts are the flags of `service install` and `service uninstall`.
type serviceOpts struct {
	root   string // install into this directory tree instead of / (Linux, macOS)
	binary string // the agent binary the service runs (default: this one)
	dryRun bool
}

// step is one thing install or uninstall does; --dry-run prints what and does nothing.
type step struct {
	what string
	do   func(ctx context.Context) error
}

// plan is the steps and what the admin does next.
type plan struct {
	steps []step
	next  string
}

// Windows' service manager actions (service_install_windows.go; nil elsewhere).
var winRegister, winUnregister func(ctx context.Context, exe string, args []string) error

// winSecureDir gives a directory an ACL of its own: under %ProgramData% a new
// directory inherits one that lets every user create files, and a config planted
// there would choose what the agent runs as SYSTEM.
var winSecureDir func(dir string) error

func serviceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install or uninstall the agent as a service (systemd, Windows service manager, launchd)",
		Args:  cobra.NoArgs,
	}
	for _, install := range []bool{true, false} {
		var o serviceOpts
		sub := &cobra.Command{
			Use:   map[bool]string{true: "install", false: "uninstall"}[install],
			Short: map[bool]string{true: "Register and enable the agent's service for the next boot", false: "Stop, disable and remove the agent's service (config and state stay)"}[install],
			Long: `On Linux writes (or removes) the systemd unit /etc/systemd/system/patchgate-agent.service
and enables it with systemctl (--root DIR: into a directory tree, systemctl --root);
on Windows registers the service patchgate-agent with the service manager (automatic
start, restart on failure); on macOS writes /Library/LaunchDaemons/com.patchgate.agent.plist.
Nothing is started: fill in the config first. See agent/README.md.`,
			Args:          cobra.NoArgs,
			SilenceUsage:  true,
			SilenceErrors: true,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return doService(cmd.Context(), cmd.OutOrStdout(), runtime.GOOS, install, o)
			},
		}
		sub.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be done and do nothing")
		sub.Flags().StringVar(&o.root, "root", "", "install into this directory tree instead of / (Linux, macOS)")
		if install {
			sub.Flags().StringVar(&o.binary, "binary", "", "the agent binary the service runs, an absolute path on the target system (default: this executable)")
		}
		cmd.AddCommand(sub)
	}
	return cmd
}

// doService builds the plan for goos and prints it (--dry-run) or carries it out.
func doService(ctx context.Context, out io.Writer, goos string, install bool, o serviceOpts) error {
	op := map[bool]string{true: "service install", false: "service uninstall"}[install]
	if install && o.binary == "" {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			return fmt.Errorf("%s: finding this executable (give --binary): %w", op, err)
		}
		o.binary = exe
	}
	p, err := servicePlan(goos, install, o)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	verb := "done"
	if o.dryRun {
		verb = "would"
	}
	for _, s := range p.steps {
		if !o.dryRun {
			if err := s.do(ctx); err != nil {
				return fmt.Errorf("%s: %s: %w", op, s.what, err)
			}
		}
		fmt.Fprintf(out, "%s: %s\n", verb, s.what)
	}
	if p.next != "" {
		fmt.Fprintf(out, "next: %s\n", p.next)
	}
	return nil
}

func servicePlan(goos string, install bool, o serviceOpts) (plan, error) {
	if o.root != "" && !filepath.IsAbs(o.root) {
		return plan{}, fmt.Errorf("--root %q: not an absolute path", o.root)
	}
	switch goos {
	case "linux":
		return linuxPlan(install, o)
	case "darwin":
		return darwinPlan(install, o)
	case "windows":
		return windowsPlan(install, o)
	}
	return plan{}, fmt.Errorf("no service manager support on %s", goos)
}

// checkBinary refuses a --binary that is not absolute or that a unit file or command
// line would read differently (systemd expands % and $, quotes with ").
func checkBinary(goos, bin string) error {
	abs := path.IsAbs(bin)
	if goos == "windows" {
		abs = len(bin) > 2 && bin[1] == ':' && (bin[2] == '\\' || bin[2] == '/')
	}
	if !abs {
		return fmt.Errorf("--binary %q: not an absolute path", bin)
	}
	if i := strings.IndexFunc(bin, func(r rune) bool {
		return r < 0x20 || r == 0x7f || strings.ContainsRune(`"'%$\`, r) && goos != "windows"
	}); i >= 0 {
		return fmt.Errorf("--binary %q: character %q at byte %d is not allowed in a service's command line", bin, bin[i], i)
	}
	return nil
}

func linuxPlan(install bool, o serviceOpts) (plan, error) {
	at := func(p string) string { return filepath.Join(o.root, p) }
	systemctl := []string{"systemctl"}
	if o.root != "" {
		systemctl = append(systemctl, "--root="+o.root)
	}
	var p plan
	if !install {
		if _, err := os.Stat(at(unitPath)); err != nil {
			return plan{}, fmt.Errorf("%s: not installed by `service install` (%v); a package's unit goes with the package manager (apt remove patchgate-agent)", at(unitPath), err)
		}
		if o.root == "" {
			p.steps = append(p.steps, runStep(append(systemctl, "disable", "--now", unitName)...))
		} else {
			p.steps = append(p.steps, runStep(append(systemctl, "disable", unitName)...))
		}
		p.steps = append(p.steps, removeStep(at(unitPath)))
		if o.root == "" {
			p.steps = append(p.steps, runStep("systemctl", "daemon-reload"))
		}
		p.next = fmt.Sprintf("%s and %s are kept; remove them by hand if the agent is gone for good", at(linuxConfigDir), at(linuxStateDir))
		return p, nil
	}
	if err := checkBinary("linux", o.binary); err != nil {
		return plan{}, err
	}
	if !strings.Contains(agentpkg.Unit, unitExec) {
		return plan{}, fmt.Errorf("the packaged unit has no %q line to point at --binary", unitExec)
	}
	unit := strings.Replace(agentpkg.Unit, unitExec, "ExecStart="+o.binary+" ", 1)
	p.steps = append(p.steps,
		mkdirStep(at(linuxConfigDir), 0o750),
		writeStep(at(linuxConfigDir+"/agent.yaml"), agentpkg.Config, 0o640, true),
		mkdirStep(at(linuxStateDir), 0o700),
		writeStep(at(unitPath), unit, 0o644, false),
	)
	if o.root == "" {
		p.steps = append(p.steps, runStep("systemctl", "daemon-reload"))
	}
	p.steps = append(p.steps, runStep(append(systemctl, "enable", unitName)...))
	p.next = fmt.Sprintf("fill in %s and the token, then: systemctl start patchgate-agent", at(linuxConfigDir+"/agent.yaml"))
	return p, nil
}

func darwinPlan(install bool, o serviceOpts) (plan, error) {
	at := func(p string) string { return filepath.Join(o.root, p) }
	var p plan
	if !install {
		if o.root == "" {
			p.steps = append(p.steps, step{what: "launchctl bootout system/" + plistLabel + " (if loaded)", do: func(ctx context.Context) error {
				exec.CommandContext(ctx, "launchctl", "bootout", "system/"+plistLabel).Run() // not loaded: nothing to stop
				return nil
			}})
		}
		p.steps = append(p.steps, removeStep(at(plistPath)))
		p.next = at(macConfigDir) + " is kept; remove it by hand if the agent is gone for good"
		return p, nil
	}
	if err := checkBinary("darwin", o.binary); err != nil {
		return plan{}, err
	}
	if !strings.Contains(agentpkg.Plist, plistExec) {
		return plan{}, fmt.Errorf("the packaged plist has no %q to point at --binary", plistExec)
	}
	var esc strings.Builder
	xml.EscapeText(&esc, []byte(o.binary))
	p.steps = append(p.steps,
		mkdirStep(at(macConfigDir), 0o750),
		writeStep(at(plistPath), strings.Replace(agentpkg.Plist, plistExec, "<string>"+esc.String()+"</string>", 1), 0o644, false),
	)
	p.next = fmt.Sprintf("put agent.yaml and the token in %s (see agent/README.md), then: launchctl bootstrap system %s (launchd loads it at every boot)", at(macConfigDir), plistPath)
	return p, nil
}

func windowsPlan(install bool, o serviceOpts) (plan, error) {
	if o.root != "" {
		return plan{}, errors.New("--root: not supported on Windows (the service manager has no directory tree)")
	}
	dir := os.Getenv("ProgramData")
	if dir == "" {
		dir = `C:\ProgramData`
	}
	dir += `\Patchgate`
	args := []string{"--log-file", dir + `\agent.log`}
	var p plan
	if !install {
		p.steps = append(p.steps, step{what: "stop and delete the service " + serviceName, do: func(ctx context.Context) error {
			return callWin(ctx, winUnregister, "", nil)
		}})
		p.next = dir + " is kept; remove it by hand if the agent is gone for good"
		return p, nil
	}
	if err := checkBinary("windows", o.binary); err != nil {
		return plan{}, err
	}
	p.steps = append(p.steps,
		step{what: fmt.Sprintf("create directory %s, owned by Administrators, only SYSTEM and Administrators may use it", dir), do: func(context.Context) error {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return err
			}
			if winSecureDir == nil {
				return errors.New("setting a Windows ACL is only possible on Windows")
			}
			return winSecureDir(dir)
		}},
		step{what: fmt.Sprintf("register the service %s: %q %s (automatic start, delayed; restart 30s after a failure)", serviceName, o.binary, strings.Join(args, " ")), do: func(ctx context.Context) error {
			return callWin(ctx, winRegister, o.binary, args)
		}},
	)
	p.next = fmt.Sprintf(`put agent.yaml and the token in %s (see agent/README.md), then: sc.exe start %s`, dir, serviceName)
	return p, nil
}

func callWin(ctx context.Context, f func(context.Context, string, []string) error, exe string, args []string) error {
	if f == nil {
		return errors.New("the Windows service manager is only reachable on Windows")
	}
	return f(ctx, exe, args)
}

func mkdirStep(dir string, mode fs.FileMode) step {
	return step{what: fmt.Sprintf("create directory %s (%04o)", dir, mode), do: func(context.Context) error {
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
		return os.Chmod(dir, mode) // MkdirAll's mode is filtered by the umask
	}}
}

// writeStep writes data to file; keep leaves an existing file alone (a filled-in config).
func writeStep(file, data string, mode fs.FileMode, keep bool) step {
	what := fmt.Sprintf("write %s (%04o)", file, mode)
	if keep {
		what += ", unless it exists"
	}
	return step{what: what, do: func(context.Context) error {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if keep {
			flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
		}
		f, err := os.OpenFile(file, flag, mode)
		if keep && errors.Is(err, fs.ErrExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := f.WriteString(data); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}}
}

func removeStep(file string) step {
	return step{what: "remove " + file, do: func(context.Context) error { return os.Remove(file) }}
}

func runStep(argv ...string) step {
	return step{what: "run " + strings.Join(argv, " "), do: func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}}
}

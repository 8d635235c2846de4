package agent

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/conf"
)

// Config is the agent's configuration, a small YAML file:
//
//	appliance: http://10.10.0.2:8080     # the appliance's distribution listener
//	token_file: /etc/patchgate-agent/token
//	state_dir: /var/lib/patchgate-agent
//	repos:                                # repository -> upstream root.json IT trusts
//	  vendor: /etc/patchgate-agent/vendor-root.json
//	allow_commands: [/usr/bin/dpkg, /usr/bin/apt-get]  # programs signed instructions may run
//	reboot_command: [/usr/sbin/shutdown, -r, +5]       # optional
//	install_timeout: 30m
//
// What to run comes from the install instructions signed with each target in its TUF
// metadata (agentapi.Instructions); the config only says which programs they may run.
// A target without instructions is refused, unless local_install is true: then such a
// target (and only such a target) is installed with the local install and check
// commands, the agent's older way:
//
//	local_install: true
//	install: [dpkg, -i, "{{.File}}"]      # argv, no shell; text/template fields below
//	check: [sh, -c, "dpkg -s foo | grep -q 'Version: {{.Version}}'"]  # optional
//
// The local install and check templates see: File (the first target's downloaded
// file), Files (all of them), Repo, Target (the first target's TUF path), Release,
// Version, Deployment (its id). The same values are in every command's environment as
// PATCHGATE_FILE, PATCHGATE_REPO, PATCHGATE_TARGET, PATCHGATE_RELEASE,
// PATCHGATE_VERSION and PATCHGATE_DEPLOYMENT. Check exiting 0 means the device already
// has the release (reported as skipped, nothing installed).
type Config struct {
	Appliance string            `yaml:"appliance"`
	TokenFile string            `yaml:"token_file"`
	StateDir  string            `yaml:"state_dir"`
	Repos     map[string]string `yaml:"repos"`
	// AllowCommands are the programs (absolute paths, matched exactly) that signed
	// install instructions may run as argv[0]; any other is refused and reported.
	AllowCommands []string `yaml:"allow_commands"`
	// RebootCommand, when set, runs after an install whose instructions need a reboot
	// (once the outcome is kept); when unset the outcome says a reboot is pending.
	RebootCommand []string `yaml:"reboot_command"`
	// LocalInstall lets targets that carry no signed instructions be installed with
	// Install and Check. Off by default: signed instructions are required.
	LocalInstall   bool     `yaml:"local_install"`
	Install        []string `yaml:"install"`
	Check          []string `yaml:"check"`
	InstallTimeout Duration `yaml:"install_timeout"`
	// CAFile is a PEM bundle to trust for an https appliance URL (empty: the system's).
	CAFile string `yaml:"ca_file"`
	// ApplianceFingerprint is the SHA-256 fingerprint of the appliance's agent
	// listener certificate, checked at enrolment (then pinned in state_dir).
	ApplianceFingerprint string `yaml:"appliance_fingerprint"`

	// Pre-checks (precheck.go). MinBatteryPercent: on battery the charge must be at
	// least this (nil: DefaultMinBatteryPercent; 0: no power check).
	MinBatteryPercent *int `yaml:"min_battery_percent"`
	// PowerSupplyDir is Linux's power supply class (default /sys/class/power_supply).
	PowerSupplyDir string `yaml:"power_supply_dir"`
	// PrecheckCommand, when set, runs before each install; a non-zero exit postpones it
	// (e.g. "no interactive session in use").
	PrecheckCommand []string `yaml:"precheck_command"`
	// PostponeFor is how long a failed pre-check postpones (default 15m).
	PostponeFor Duration `yaml:"postpone_for"`
	// RestorePoint is auto (default: make one before each install where the OS can)
	// or off. RestorePointCommand is the Linux hook (snapper, btrfs, LVM) to use.
	RestorePoint        string   `yaml:"restore_point"`
	RestorePointCommand []string `yaml:"restore_point_command"`
}

// Duration is a time.Duration written "30m".
type Duration time.Duration

// UnmarshalYAML parses "30m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 30m, got %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// DefaultInstallTimeout bounds an install command when the config does not.
const DefaultInstallTimeout = 30 * time.Minute

// LoadConfig reads and checks the agent's config file. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("agent: config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("agent: config %s: %w", path, err)
	}
	// Relative paths are relative to the config file.
	base := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.TokenFile, c.StateDir, c.CAFile = rel(c.TokenFile), rel(c.StateDir), rel(c.CAFile)
	c.PowerSupplyDir = rel(c.PowerSupplyDir)
	for k, v := range c.Repos {
		c.Repos[k] = rel(v)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("agent: config %s: %w", path, err)
	}
	return c, nil
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate reports every problem of c, one per line, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if !conf.IsHTTPURL(c.Appliance) {
		bad("appliance", "must be an http(s) URL such as http://10.10.0.2:8080, got %q", c.Appliance)
	}
	if c.StateDir == "" {
		bad("state_dir", "must be set")
	}
	if c.ApplianceFingerprint != "" && normFingerprint(c.ApplianceFingerprint) == "" {
		bad("appliance_fingerprint", "must be a SHA-256 fingerprint (64 hex digits, colons allowed), got %q", c.ApplianceFingerprint)
	}
	if c.TokenFile == "" {
		bad("token_file", "must be set (the enrolment token is read from it once)")
	}
	if len(c.Repos) == 0 {
		bad("repos", "must name at least one repository and its trusted root file")
	}
	for name, root := range c.Repos {
		if !repoName.MatchString(name) {
			bad("repos."+name, "is not a repository name")
		}
		if root == "" {
			bad("repos."+name, "must be the path of the repository's trusted root.json")
		}
	}
	if len(c.AllowCommands) == 0 && !c.LocalInstall {
		bad("allow_commands", "must list the programs signed install instructions may run, e.g. [/usr/bin/dpkg]")
	}
	for i, p := range c.AllowCommands {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			bad(fmt.Sprintf("allow_commands[%d]", i), "must be a clean absolute path, got %q", p)
		}
	}
	if len(c.RebootCommand) > 0 && c.RebootCommand[0] == "" {
		bad("reboot_command[0]", "must name the program")
	}
	switch {
	case c.LocalInstall && len(c.Install) == 0:
		bad("install", "must be the install command when local_install is true, e.g. [dpkg, -i, \"{{.File}}\"]")
	case !c.LocalInstall && len(c.Install)+len(c.Check) > 0:
		bad("install", "install and check are used only with local_install: true; "+
			"the default is the install instructions signed with each target (list their programs in allow_commands)")
	}
	for key, argv := range map[string][]string{"install": c.Install, "check": c.Check} {
		for i, a := range argv {
			if _, err := template.New("").Option("missingkey=error").Parse(a); err != nil {
				bad(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			}
		}
	}
	if c.InstallTimeout < 0 {
		bad("install_timeout", "must not be negative")
	}
	if c.MinBatteryPercent != nil && (*c.MinBatteryPercent < 0 || *c.MinBatteryPercent > 100) {
		bad("min_battery_percent", "must be 0-100 (0: no power check), got %d", *c.MinBatteryPercent)
	}
	if c.PostponeFor < 0 {
		bad("postpone_for", "must not be negative")
	}
	for key, argv := range map[string][]string{"precheck_command": c.PrecheckCommand, "restore_point_command": c.RestorePointCommand} {
		if len(argv) > 0 && !filepath.IsAbs(argv[0]) {
			bad(key+"[0]", "must be the program's absolute path, got %q", argv[0])
		}
	}
	if c.RestorePoint != "" && c.RestorePoint != "auto" && c.RestorePoint != "off" {
		bad("restore_point", "must be auto or off, got %q", c.RestorePoint)
	}
	return errors.Join(errs...)
}

func (c *Config) installTimeout() time.Duration {
	if c.InstallTimeout == 0 {
		return DefaultInstallTimeout
	}
	return time.Duration(c.InstallTimeout)
}

func (c *Config) minBattery() int {
	if c.MinBatteryPercent == nil {
		return DefaultMinBatteryPercent
	}
	return *c.MinBatteryPercent
}

func (c *Config) powerSupplyDir() string {
	if c.PowerSupplyDir == "" {
		return DefaultPowerSupplyDir
	}
	return c.PowerSupplyDir
}

func (c *Config) postponeFor() time.Duration {
	if c.PostponeFor == 0 {
		return DefaultPostpone
	}
	return time.Duration(c.PostponeFor)
}

// baseURL is the appliance URL with a trailing slash.
func (c *Config) baseURL() *url.URL {
	u, _ := url.Parse(strings.TrimRight(c.Appliance, "/") + "/")
	return u
}

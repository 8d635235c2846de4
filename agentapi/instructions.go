package agentapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Install instructions travel in a TUF target's custom metadata, so they are signed
// with the target's length and hashes and an agent only ever runs what the
// repository's targets key signed. The target's custom object holds them under
// CustomKey; other keys of that object are left to other tools:
//
//	"custom": {
//	  "patchgate": {
//	    "install": {
//	      "linux": {
//	        "command": ["/usr/bin/dpkg", "-i", "{file}"],
//	        "check": ["/usr/bin/dpkg-query", "-W", "tool"],
//	        "reboot": false,
//	        "min_free_bytes": 104857600
//	      },
//	      "windows": {"command": ["C:\\Windows\\System32\\msiexec.exe", "/i", "{file}", "/qn"]}
//	    }
//	  }
//	}
//
// The keys under "install" are operating systems as Go names them (GOOS): linux,
// windows, darwin. Commands are argv arrays run without a shell; argv[0] is an
// absolute path, and FilePlaceholder in any argument becomes the verified download.
const (
	// CustomKey is the key of a target's custom metadata that holds Instructions.
	CustomKey = "patchgate"
	// FilePlaceholder in a command's argument is replaced by the downloaded file's path.
	FilePlaceholder = "{file}"
)

// Bounds of instructions: anything larger is refused as malformed.
const (
	MaxCustomBytes  = 64 << 10 // the whole custom object of one target
	MaxArgs         = 64       // arguments of one command, argv[0] included
	MaxArgBytes     = 4096     // bytes of one argument
	MaxMinFreeBytes = 1 << 42  // 4 TiB
)

// InstallOSes are the operating systems instructions may name, as GOOS spells them.
var InstallOSes = []string{"darwin", "linux", "windows"}

// ErrNoInstructions means a target's custom metadata holds no CustomKey at all.
var ErrNoInstructions = errors.New("the target carries no signed install instructions")

// Instructions are a target's signed install instructions: one Step per operating
// system. The zero value covers no OS and fails Validate.
type Instructions struct {
	Install map[string]Step `json:"install" yaml:"install"`
}

// Step is how to install a target on one OS. Command is required; Check, when set,
// is run first and exit 0 means the device already has the release. Reboot says the
// install takes effect only after a restart. MinFreeBytes is the free space the
// device needs, besides the download itself, before the agent fetches the target.
type Step struct {
	Command      []string `json:"command" yaml:"command"`
	Check        []string `json:"check,omitempty" yaml:"check"`
	Reboot       bool     `json:"reboot,omitempty" yaml:"reboot"`
	MinFreeBytes int64    `json:"min_free_bytes,omitempty" yaml:"min_free_bytes"`
	// RestorePoint required: the install runs only after the OS made a restore point
	// or snapshot; if it cannot, the install stops with a failed outcome.
	RequireRestorePoint bool `json:"require_restore_point,omitempty" yaml:"require_restore_point"`
}

// ParseInstructions reads the instructions out of a target's whole custom metadata.
// It returns ErrNoInstructions when custom has no CustomKey, and otherwise an error
// naming the field (such as patchgate.install.linux.command[0]) for anything
// malformed: unknown fields, an unknown OS, an empty or relative command, oversized
// values.
func ParseInstructions(custom []byte) (Instructions, error) {
	if len(bytes.TrimSpace(custom)) == 0 {
		return Instructions{}, ErrNoInstructions
	}
	if len(custom) > MaxCustomBytes {
		return Instructions{}, fmt.Errorf("instructions: custom metadata is %d bytes, more than %d", len(custom), MaxCustomBytes)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(custom, &obj); err != nil || obj == nil {
		return Instructions{}, fmt.Errorf("instructions: custom metadata is not a JSON object: %v", errOr(err, "null"))
	}
	raw, ok := obj[CustomKey]
	if !ok {
		return Instructions{}, ErrNoInstructions
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var in *Instructions
	if err := dec.Decode(&in); err != nil {
		return Instructions{}, fmt.Errorf("instructions: %s: %v", CustomKey, err)
	}
	if in == nil {
		return Instructions{}, fmt.Errorf("instructions: %s: must be an object, got null", CustomKey)
	}
	if err := in.validate(CustomKey + ".install"); err != nil {
		return Instructions{}, fmt.Errorf("instructions: %w", err)
	}
	for os, s := range in.Install { // "check": [] means no check, like an absent one
		if len(s.Check) == 0 {
			s.Check = nil
			in.Install[os] = s
		}
	}
	return *in, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// Validate reports every problem of in, each naming its field (install.linux.command[0]).
func (in Instructions) Validate() error { return in.validate("install") }

func (in Instructions) validate(at string) error {
	var errs []error
	if len(in.Install) == 0 {
		errs = append(errs, fmt.Errorf("%s: must name at least one OS (%s)", at, strings.Join(InstallOSes, ", ")))
	}
	for _, os := range slices.Sorted(maps.Keys(in.Install)) {
		field := at + "." + os
		if !slices.Contains(InstallOSes, os) {
			errs = append(errs, fmt.Errorf("%s: unknown OS %q (want one of %s)", field, os, strings.Join(InstallOSes, ", ")))
			continue
		}
		s := in.Install[os]
		errs = append(errs, checkArgv(field+".command", os, s.Command, true))
		errs = append(errs, checkArgv(field+".check", os, s.Check, false))
		if s.MinFreeBytes < 0 || s.MinFreeBytes > MaxMinFreeBytes {
			errs = append(errs, fmt.Errorf("%s.min_free_bytes: must be 0-%d, got %d", field, int64(MaxMinFreeBytes), s.MinFreeBytes))
		}
	}
	return errors.Join(errs...)
}

func checkArgv(field, os string, argv []string, required bool) error {
	switch {
	case len(argv) == 0 && required:
		return fmt.Errorf("%s: must be a command, an argv array such as [\"/usr/bin/dpkg\", \"-i\", %q]", field, FilePlaceholder)
	case len(argv) == 0:
		return nil
	case len(argv) > MaxArgs:
		return fmt.Errorf("%s: at most %d arguments, got %d", field, MaxArgs, len(argv))
	}
	var errs []error
	for i, a := range argv {
		switch {
		case len(a) > MaxArgBytes:
			errs = append(errs, fmt.Errorf("%s[%d]: longer than %d bytes", field, i, MaxArgBytes))
		case !utf8.ValidString(a) || strings.ContainsRune(a, 0):
			errs = append(errs, fmt.Errorf("%s[%d]: not valid UTF-8 text without NUL bytes", field, i))
		}
	}
	if !absolute(os, argv[0]) || strings.Contains(argv[0], FilePlaceholder) {
		errs = append(errs, fmt.Errorf("%s[0]: must be the program's absolute path on %s, got %q", field, os, argv[0]))
	}
	return errors.Join(errs...)
}

// absolute reports whether p is an absolute path on os (judged by the text alone, so
// the appliance checks Windows paths on Linux the same way the agent does).
func absolute(os, p string) bool {
	if os != "windows" {
		return strings.HasPrefix(p, "/")
	}
	if strings.HasPrefix(p, `\\`) {
		return len(p) > 2
	}
	return len(p) > 3 && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z') && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// For returns the step for goos, or an error saying which OSes the instructions cover.
func (in Instructions) For(goos string) (Step, error) {
	s, ok := in.Install[goos]
	if !ok {
		return Step{}, fmt.Errorf("the signed install instructions do not cover %s (they cover %s)",
			goos, strings.Join(slices.Sorted(maps.Keys(in.Install)), ", "))
	}
	return s, nil
}

// Expand returns argv with FilePlaceholder replaced by file in every argument.
func Expand(argv []string, file string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, FilePlaceholder, file)
	}
	return out
}

// WithInstructions returns the custom object custom (nil: none) with in under
// CustomKey, after validating in. A custom object that already has CustomKey, or is
// not a JSON object, is refused.
func WithInstructions(custom json.RawMessage, in Instructions) (json.RawMessage, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("instructions: %w", err)
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(custom)) > 0 {
		if err := json.Unmarshal(custom, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("instructions: custom metadata is not a JSON object: %v", errOr(err, "null"))
		}
	}
	if _, ok := obj[CustomKey]; ok {
		return nil, fmt.Errorf("instructions: custom metadata already has a %q key", CustomKey)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("instructions: %w", err)
	}
	obj[CustomKey] = b
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("instructions: %w", err)
	}
	if len(out) > MaxCustomBytes {
		return nil, fmt.Errorf("instructions: custom metadata would be %d bytes, more than %d", len(out), MaxCustomBytes)
	}
	return out, nil
}

// Detail prefixes of failed outcomes no install command caused, so the appliance and
// its admins can tell them from an installer's failure.
const (
	DetailRefused  = "refused: "          // the agent will not run what the target asks
	DetailPrecheck = "pre-check failed: " // the device is not ready (free space)
)

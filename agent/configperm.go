package agent

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// CheckConfigPermissions refuses a config file, or the folder it is in, that someone
// other than the system's administrators (and the file's owner) can write: the config
// chooses which programs the agent runs as root/SYSTEM, and a folder others may create
// files in lets them plant one. The same goes for the files cfg trusts (each repository's
// root.json, ca_file) and their folders: whoever writes a trusted root signs what runs. On Linux and macOS a group- or other-writable mode
// (or an owner other than root or the agent's user) is refused; on Windows the
// security descriptor is read and every allow ACE granting a write right to a SID
// other than SYSTEM, Administrators, TrustedInstaller or the owner is refused
// (aclWriters). The error names the path and how to fix it.
func CheckConfigPermissions(path string, cfg Config) error {
	paths := []string{filepath.Dir(path), path}
	roots := make([]string, 0, len(cfg.Repos)+1)
	for _, r := range cfg.Repos {
		roots = append(roots, r)
	}
	slices.Sort(roots) // map order: report the same path first every time
	if cfg.CAFile != "" {
		roots = append(roots, cfg.CAFile)
	}
	for _, r := range roots {
		paths = append(paths, filepath.Dir(r), r)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if p = filepath.Clean(p); seen[p] {
			continue
		}
		seen[p] = true
		if err := checkWritable(p); err != nil {
			return fmt.Errorf("agent: config permissions: %w", err)
		}
	}
	return nil
}

// modeProblem says what is wrong with a Unix mode for a config folder or file, or "".
func modeProblem(mode fs.FileMode) string {
	switch p := mode.Perm(); {
	case p&0o002 != 0:
		return fmt.Sprintf("is writable by every user (mode %04o)", p)
	case p&0o020 != 0:
		return fmt.Sprintf("is writable by its group (mode %04o)", p)
	}
	return ""
}

// ACE is one entry of a Windows DACL, as far as deciding who may write.
type ACE struct {
	Deny bool
	SID  string // string form, e.g. S-1-5-32-545
	Mask uint32
	// InheritOnly entries apply to what is created inside, not the object itself.
	InheritOnly bool
}

// Well-known SIDs trusted to write the config.
const (
	sidSystem           = "S-1-5-18"
	sidAdministrators   = "S-1-5-32-544"
	sidTrustedInstaller = "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
	sidEveryone         = "S-1-1-0"
	sidCreatorOwner     = "S-1-3-0" // stands for the owner in inherited entries
)

// aclWriteMask is the access rights that let a trustee change what the agent reads:
// file write data / folder add file (0x2), append data / add subfolder (0x4), delete
// child (0x40), WRITE_DAC, WRITE_OWNER, GENERIC_ALL and GENERIC_WRITE. DELETE alone is
// left out: deleting the config stops the agent, it does not choose what it runs
// (re-creating the file needs add-file on the folder, which is checked).
const aclWriteMask = 0x2 | 0x4 | 0x40 | 0x40000 | 0x80000 | 0x10000000 | 0x40000000

// aclWriters returns the SIDs, other than SYSTEM, Administrators, TrustedInstaller and
// owner, that the DACL lets write. nullDACL (no DACL at all) grants everyone
// everything. ACEs are taken in order, as Windows evaluates them: rights denied by an
// earlier entry for the same SID or for Everyone are not granted by a later one. Group
// membership is unknown here, so a deny for a group does not cover its members
// (erring on the side of refusing).
func aclWriters(owner string, nullDACL bool, aces []ACE) []string {
	if nullDACL {
		return []string{sidEveryone}
	}
	trusted := map[string]bool{sidSystem: true, sidAdministrators: true, sidTrustedInstaller: true, sidCreatorOwner: true, owner: true}
	denied := map[string]uint32{}
	var writers []string
	seen := map[string]bool{}
	for _, a := range aces {
		if a.InheritOnly {
			continue
		}
		if a.Deny {
			denied[a.SID] |= a.Mask
			continue
		}
		if a.Mask&^(denied[a.SID]|denied[sidEveryone])&aclWriteMask == 0 || trusted[a.SID] || seen[a.SID] {
			continue
		}
		seen[a.SID] = true
		writers = append(writers, a.SID)
	}
	return writers
}

// aclProblem is aclWriters as a sentence naming the SIDs, or "".
func aclProblem(owner string, nullDACL bool, aces []ACE) string {
	w := aclWriters(owner, nullDACL, aces)
	if len(w) == 0 {
		return ""
	}
	if nullDACL {
		return "has no DACL, so everyone may write it"
	}
	return "is writable by " + strings.Join(w, ", ") + " (only SYSTEM, Administrators and the owner may write it)"
}

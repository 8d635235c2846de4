package abupdate

import (
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// State of a boot entry, as systemd-boot and systemd-bless-boot see it.
type State string

const (
	Good    State = "good"    // no boot counter: blessed, or the factory version
	Pending State = "pending" // boot counter with tries left: installed, not proven yet
	Bad     State = "bad"     // boot counter at zero: failed its tries, or rolled back
)

// Entry is one appliance version's UKI in EFI/Linux on the ESP.
type Entry struct {
	File      string // file name, e.g. patchgate_0.1.7+2-1.efi
	Version   string // 0.1.7
	Counting  bool   // the name carries a boot counter
	TriesLeft int
	TriesDone int
	RootUUID  string // the root=UUID= of the UKI's command line; empty if it has none
}

// State tells whether the entry is good, pending or bad.
func (e Entry) State() State {
	switch {
	case !e.Counting:
		return Good
	case e.TriesLeft > 0:
		return Pending
	default:
		return Bad
	}
}

// name builds the file name of version with a counter (left, done), or none if left < 0.
func name(version string, left, done int) string {
	if left < 0 {
		return "patchgate_" + version + ".efi"
	}
	return fmt.Sprintf("patchgate_%s+%d-%d.efi", version, left, done)
}

// versionRE is what a version may look like: it becomes part of a FAT file name and a
// boot entry id, and "+" would be read as a boot counter.
var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.~-]{0,63}$`)

// CheckVersion reports whether v can name an appliance version.
func CheckVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("abupdate: version %q: want a digit first, then up to 63 of [0-9A-Za-z.~-]", v)
	}
	return nil
}

var entryRE = regexp.MustCompile(`^patchgate_([0-9][0-9A-Za-z.~-]{0,63}?)(?:\+([0-9]+)(?:-([0-9]+))?)?\.efi$`)

// parseName parses a UKI file name; ok is false for files that are not ours.
func parseName(file string) (e Entry, ok bool) {
	m := entryRE.FindStringSubmatch(file)
	if m == nil {
		return Entry{}, false
	}
	e = Entry{File: file, Version: m[1]}
	if m[2] != "" {
		left, err1 := strconv.Atoi(m[2])
		done := 0
		var err2 error
		if m[3] != "" {
			done, err2 = strconv.Atoi(m[3])
		}
		if err1 != nil || err2 != nil {
			return Entry{}, false
		}
		e.Counting, e.TriesLeft, e.TriesDone = true, left, done
	}
	return e, true
}

// linuxDir is where type #2 boot entries (UKIs) live on the ESP.
const linuxDir = "EFI/Linux"

// Entries lists the appliance's boot entries on the ESP mounted at esp, in the order
// systemd-boot prefers them: entries with tries left (or no counter) before bad ones,
// then newest version first.
func Entries(esp string) ([]Entry, error) {
	es, err := ListEntries(esp)
	if err != nil {
		return nil, err
	}
	for i := range es {
		es[i].RootUUID, err = ukiRootUUID(filepath.Join(esp, linuxDir, es[i].File))
		if err != nil {
			return nil, err
		}
	}
	return es, nil
}

// ListEntries is Entries from the file names alone, without opening the UKIs (RootUUID
// stays empty): for a reader that may list the ESP's directories but not read its
// files, as the unprivileged daemon does for its status page.
func ListEntries(esp string) ([]Entry, error) {
	des, err := os.ReadDir(filepath.Join(esp, linuxDir))
	if err != nil {
		return nil, fmt.Errorf("abupdate: entries: %w", err)
	}
	var out []Entry
	for _, de := range des {
		e, ok := parseName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		bi, bj := out[i].State() == Bad, out[j].State() == Bad
		if bi != bj {
			return bj
		}
		return CompareVersions(out[i].Version, out[j].Version) > 0
	})
	return out, nil
}

// ukiRootUUID reads the root=UUID= argument from the .cmdline section of a UKI.
func ukiRootUUID(path string) (string, error) {
	f, err := pe.Open(path)
	if err != nil {
		return "", fmt.Errorf("abupdate: %s: not a UKI: %w", filepath.Base(path), err)
	}
	defer f.Close()
	s := f.Section(".cmdline")
	if s == nil {
		return "", fmt.Errorf("abupdate: %s: not a UKI: no .cmdline section", filepath.Base(path))
	}
	// The section is small; cap the read so a corrupt header cannot ask for gigabytes.
	data, err := io.ReadAll(io.LimitReader(s.Open(), 64<<10))
	if err != nil {
		return "", fmt.Errorf("abupdate: %s: read .cmdline: %w", filepath.Base(path), err)
	}
	return rootUUID(strings.TrimRight(string(data), "\x00")), nil
}

// rootUUID returns the value of root=UUID= in a kernel command line.
func rootUUID(cmdline string) string {
	for _, arg := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(arg, "root=UUID="); ok {
			return strings.ToLower(v)
		}
	}
	return ""
}

// RunningRootUUID reads the running system's root=UUID= from a kernel command line file
// (/proc/cmdline).
func RunningRootUUID(cmdlineFile string) (string, error) {
	data, err := os.ReadFile(cmdlineFile)
	if err != nil {
		return "", fmt.Errorf("abupdate: %w", err)
	}
	u := rootUUID(string(data))
	if u == "" {
		return "", errors.New("abupdate: the kernel command line has no root=UUID=: not booted from an appliance UKI")
	}
	return u, nil
}

// CompareVersions orders versions as systemd-boot does for our names, close enough for
// dotted versions: digit runs compare as numbers, other runs as strings, "~" sorts
// before everything (0.2~rc1 < 0.2). It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		if ta, tb := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~"); ta || tb {
			if ta && tb {
				a, b = a[1:], b[1:]
				continue
			}
			if ta {
				return -1
			}
			return 1
		}
		if a == "" {
			return -1
		}
		if b == "" {
			return 1
		}
		pa, ra := token(a)
		pb, rb := token(b)
		if c := compareToken(pa, pb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// token splits off a run of digits, a run of letters, or one separator.
func token(s string) (string, string) {
	i := 1
	switch {
	case isDigit(s[0]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	case isAlpha(s[0]):
		for i < len(s) && isAlpha(s[i]) {
			i++
		}
	}
	return s[:i], s[i:]
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func compareToken(a, b string) int {
	da, db := isDigit(a[0]), isDigit(b[0])
	switch {
	case da && db:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case da: // a number is newer than letters or a separator
		return 1
	case db:
		return -1
	case isAlpha(a[0]) != isAlpha(b[0]): // a separator (more parts) is newer than letters
		if isAlpha(a[0]) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

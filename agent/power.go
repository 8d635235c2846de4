package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/agentapi"
)

// PowerStatus is what the OS says about the device's power: on mains (AC) power, and
// the battery's charge when there is one.
type PowerStatus struct {
	OnAC       bool
	HasBattery bool
	Percent    int // 0-100; meaningful only with HasBattery
}

func (p PowerStatus) String() string {
	switch {
	case !p.HasBattery && p.OnAC:
		return "AC, no battery"
	case !p.HasBattery:
		return "no battery"
	case p.OnAC:
		return fmt.Sprintf("AC, battery %d%%", p.Percent)
	}
	return fmt.Sprintf("battery %d%%", p.Percent)
}

// powerCheck judges p against the battery threshold: on AC (or no battery at all, a
// desktop) passes; on battery the charge must be at least minPercent.
func powerCheck(p PowerStatus, err error, minPercent int) agentapi.Check {
	c := agentapi.Check{Name: agentapi.CheckPower, Need: fmt.Sprintf("AC or battery >= %d%%", minPercent)}
	switch {
	case err != nil:
		c.Value, c.Detail = "unknown", err.Error()
	case p.OnAC || !p.HasBattery:
		c.OK, c.Value = true, p.String()
	default:
		c.OK, c.Value = p.Percent >= minPercent, p.String()
	}
	return c
}

// readPowerSupply reads Linux's power supply class under root (normally
// /sys/class/power_supply): any online "Mains" or "USB" supply means AC; batteries'
// "capacity" is averaged. A root with no supplies is a device without a battery on
// mains power (a desktop or a VM).
func readPowerSupply(root string) (PowerStatus, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return PowerStatus{OnAC: true}, nil
	}
	if err != nil {
		return PowerStatus{}, fmt.Errorf("power: %w", err)
	}
	var st PowerStatus
	var sum, n int
	sawSupply := false
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		typ := sysfsValue(dir, "type")
		switch typ {
		case "Mains", "USB", "USB_C", "USB_PD":
			sawSupply = true
			if sysfsValue(dir, "online") == "1" {
				st.OnAC = true
			}
		case "Battery":
			if sysfsValue(dir, "scope") == "Device" { // a mouse's or keyboard's battery
				continue
			}
			s := sysfsValue(dir, "capacity")
			if s == "" {
				continue
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 || v > 100 {
				return PowerStatus{}, fmt.Errorf("power: %s: capacity %q is not a percentage", filepath.Join(dir, "capacity"), s)
			}
			st.HasBattery = true
			sum += v
			n++
			if sysfsValue(dir, "status") == "Charging" || sysfsValue(dir, "status") == "Full" {
				st.OnAC = true
			}
		}
	}
	if n > 0 {
		st.Percent = sum / n
	}
	if !sawSupply && !st.HasBattery {
		st.OnAC = true // nothing reported: a machine on mains
	}
	return st, nil
}

func sysfsValue(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || len(b) > 256 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var pmsetPercent = regexp.MustCompile(`\t?(\d{1,3})%;`)

// parsePmset reads the output of macOS's `pmset -g batt`:
//
//	Now drawing from 'AC Power'
//	 -InternalBattery-0 (id=1234)	95%; charged; 0:00 remaining present: true
//
// "Battery Power" means on battery. A Mac without a battery lists none.
func parsePmset(out string) (PowerStatus, error) {
	first, rest, _ := strings.Cut(out, "\n")
	var st PowerStatus
	switch {
	case strings.Contains(first, "'AC Power'"), strings.Contains(first, "'UPS Power'"):
		st.OnAC = true
	case strings.Contains(first, "'Battery Power'"):
	default:
		return PowerStatus{}, fmt.Errorf("power: pmset: first line %q names no power source", truncate(first, 80))
	}
	for _, line := range strings.Split(rest, "\n") {
		if !strings.Contains(line, "InternalBattery") {
			continue
		}
		m := pmsetPercent.FindStringSubmatch(line)
		if m == nil {
			return PowerStatus{}, fmt.Errorf("power: pmset: battery line %q has no percentage", truncate(line, 80))
		}
		v, _ := strconv.Atoi(m[1])
		if v > 100 {
			return PowerStatus{}, fmt.Errorf("power: pmset: battery at %d%% is not a percentage", v)
		}
		st.HasBattery, st.Percent = true, v
		break
	}
	if !st.HasBattery && !st.OnAC {
		return PowerStatus{}, errors.New("power: pmset: on battery power but no battery listed")
	}
	return st, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

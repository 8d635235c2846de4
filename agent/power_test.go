package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FakeSysfs writes a Linux power_supply class into a new t.TempDir() and returns it:
// supply name -> file -> value. Exported for the package's external tests.
func FakeSysfs(t *testing.T, supplies map[string]map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, files := range supplies {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range files {
			if err := os.WriteFile(filepath.Join(root, name, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// wantResult compares a parser's result with want, or its error with a wanted part.
func wantResult[T any](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestReadPowerSupply(t *testing.T) {
	tests := []struct {
		name     string
		supplies map[string]map[string]string
		want     PowerStatus
		err      string
	}{
		{name: "desktop without supplies", want: PowerStatus{OnAC: true}},
		{name: "laptop on AC", supplies: map[string]map[string]string{
			"AC": {"type": "Mains", "online": "1"}, "BAT0": {"type": "Battery", "capacity": "80", "status": "Charging"}},
			want: PowerStatus{OnAC: true, HasBattery: true, Percent: 80}},
		{name: "laptop on battery", supplies: map[string]map[string]string{
			"ADP1": {"type": "Mains", "online": "0"}, "BAT0": {"type": "Battery", "capacity": "31", "status": "Discharging"}},
			want: PowerStatus{HasBattery: true, Percent: 31}},
		{name: "two batteries averaged", supplies: map[string]map[string]string{
			"AC": {"type": "Mains", "online": "0"}, "BAT0": {"type": "Battery", "capacity": "90"}, "BAT1": {"type": "Battery", "capacity": "10"}},
			want: PowerStatus{HasBattery: true, Percent: 50}},
		{name: "mouse battery ignored", supplies: map[string]map[string]string{
			"hidpp_battery_0": {"type": "Battery", "scope": "Device", "capacity": "5"}},
			want: PowerStatus{OnAC: true}},
		{name: "USB-C charger", supplies: map[string]map[string]string{
			"ucsi-source-psy-USBC000:001": {"type": "USB", "online": "1"}, "BAT0": {"type": "Battery", "capacity": "12", "status": "Discharging"}},
			want: PowerStatus{OnAC: true, HasBattery: true, Percent: 12}},
		{name: "bad capacity", supplies: map[string]map[string]string{"BAT0": {"type": "Battery", "capacity": "lots"}},
			err: `BAT0/capacity: capacity "lots" is not a percentage`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readPowerSupply(FakeSysfs(t, tc.supplies))
			wantResult(t, got, err, tc.want, tc.err)
		})
	}
	if st, err := readPowerSupply(filepath.Join(t.TempDir(), "absent")); err != nil || !st.OnAC {
		t.Errorf("absent class = %+v, %v; want on AC", st, err)
	}
}

func TestParsePmset(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want PowerStatus
		err  string
	}{
		{name: "on AC charged", out: "Now drawing from 'AC Power'\n -InternalBattery-0 (id=4653155)\t100%; charged; 0:00 remaining present: true\n",
			want: PowerStatus{OnAC: true, HasBattery: true, Percent: 100}},
		{name: "on battery", out: "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=4653155)\t37%; discharging; 3:12 remaining present: true\n",
			want: PowerStatus{HasBattery: true, Percent: 37}},
		{name: "mac mini", out: "Now drawing from 'AC Power'\n", want: PowerStatus{OnAC: true}},
		{name: "UPS", out: "Now drawing from 'UPS Power'\n -InternalBattery-0 (id=1)\t99%; charging; present: true\n",
			want: PowerStatus{OnAC: true, HasBattery: true, Percent: 99}},
		{name: "garbage", out: "pmset: command not found", err: "names no power source"},
		{name: "no percentage", out: "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\tcharging\n", err: "has no percentage"},
		{name: "over 100", out: "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t400%; charging\n", err: "not a percentage"},
		{name: "battery power without battery", out: "Now drawing from 'Battery Power'\n", err: "no battery listed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePmset(tc.out)
			wantResult(t, got, err, tc.want, tc.err)
		})
	}
}

func FuzzParsePmset(f *testing.F) {
	f.Add("Now drawing from 'AC Power'\n -InternalBattery-0 (id=4653155)\t100%; charged; 0:00 remaining present: true\n")
	f.Add("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t5%; discharging\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, out string) {
		st, err := parsePmset(out)
		if err != nil {
			return
		}
		if st.Percent < 0 || st.Percent > 100 || (!st.OnAC && !st.HasBattery) {
			t.Errorf("parsePmset(%q) = %+v: impossible status", out, st)
		}
	})
}

func TestPowerCheck(t *testing.T) {
	tests := []struct {
		name string
		st   PowerStatus
		err  error
		ok   bool
		val  string
	}{
		{name: "AC", st: PowerStatus{OnAC: true, HasBattery: true, Percent: 3}, ok: true, val: "AC, battery 3%"},
		{name: "desktop", st: PowerStatus{}, ok: true, val: "no battery"},
		{name: "battery enough", st: PowerStatus{HasBattery: true, Percent: 40}, ok: true, val: "battery 40%"},
		{name: "battery low", st: PowerStatus{HasBattery: true, Percent: 39}, val: "battery 39%"},
		{name: "unknown", err: errors.New("power: boom"), val: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := powerCheck(tc.st, tc.err, 40)
			if c.OK != tc.ok || c.Value != tc.val || c.Need != "AC or battery >= 40%" {
				t.Errorf("powerCheck = %+v, want ok=%v value %q", c, tc.ok, tc.val)
			}
		})
	}
}

func TestRestoreCommand(t *testing.T) {
	none := func(string) bool { return false }
	all := func(string) bool { return true }
	tests := []struct {
		name   string
		goos   string
		hook   []string
		exists func(string) bool
		method string
		argv0  string
	}{
		{name: "windows", goos: "windows", exists: none, method: "Checkpoint-Computer", argv0: powershellPath},
		{name: "darwin", goos: "darwin", exists: none, method: "tmutil localsnapshot", argv0: tmutilPath},
		{name: "linux with snapper", goos: "linux", exists: all, method: "snapper", argv0: snapperPath},
		{name: "linux without", goos: "linux", exists: none},
		{name: "hook first", goos: "linux", exists: all, hook: []string{"/usr/local/sbin/lvsnap"}, method: "restore_point_command /usr/local/sbin/lvsnap", argv0: "/usr/local/sbin/lvsnap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, argv := restoreCommand(tc.goos, tc.hook, tc.exists)
			if method != tc.method || (tc.argv0 == "") != (len(argv) == 0) || (len(argv) > 0 && argv[0] != tc.argv0) {
				t.Errorf("restoreCommand = %q %q, want %q %q", method, argv, tc.method, tc.argv0)
			}
		})
	}
}

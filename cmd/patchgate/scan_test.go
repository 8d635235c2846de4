package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/netscan/scantest"
	"github.com/patchgate/patchgate/netscan/survey"
)

func TestScanFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no iface", []string{"scan", "--subnet", "192.0.2.0/24"}, "--iface is required"},
		{"nothing to do", []string{"scan", "--iface", "lo", "--passive-seconds", "0"}, "give --subnet"},
		{"host bits", []string{"scan", "--iface", "lo", "--subnet", "192.0.2.1/24"}, "has host bits set"},
		{"too big", []string{"scan", "--iface", "lo", "--subnet", "10.0.0.0/8"}, "more than max_addresses"},
		{"bad probe", []string{"scan", "--iface", "lo", "--subnet", "192.0.2.0/24", "--probes", "osdetect"}, "unknown probe"},
		{"bad rate", []string{"scan", "--iface", "lo", "--subnet", "192.0.2.0/24", "--host-rate", "5000"}, "host_rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.args...)
			if code == 0 || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, stderr %q; want failure mentioning %q", tt.args, code, stderr, tt.want)
			}
		})
	}
}

// TestScanLoopback scans one loopback address where a listener stands on port 80 (a
// ping port, so the routed sweep finds it), TCP only (no raw sockets), and reads the
// JSON and the table. Nothing leaves loopback.
func TestScanLoopback(t *testing.T) {
	scantest.OpenPort(t, "127.0.7.1:80")
	args := []string{"scan", "--iface", "lo", "--subnet", "127.0.7.0/30", "--probes", "tcp", "--ports", "80,9100",
		"--passive-seconds", "0", "--timeout", "500ms"}
	stdout, stderr, code := run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("scan --json: exit %d: %s", code, stderr)
	}
	var rep survey.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("scan --json output: %v\n%s", err, stdout)
	}
	// On loopback every address answers (a refusal is an answer), so both are live;
	// only 127.0.7.1 has something to show.
	if rep.Active.Addresses != 2 || rep.Active.Live != 2 || len(rep.Devices) != 1 || rep.Devices[0].Addrs[0].String() != "127.0.7.1" {
		t.Fatalf("report = %+v, want 127.0.7.1 alone of 2 addresses", rep)
	}
	if !strings.Contains(stdout, `"tcp.open"`) {
		t.Errorf("no open port reported:\n%s", stdout)
	}
	stdout, stderr, code = run(t, args...)
	if code != 0 || !strings.Contains(stdout, "127.0.7.1") || !strings.Contains(stdout, "scan: 2 addresses, 2 live") {
		t.Errorf("scan table: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

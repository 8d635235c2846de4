package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/appliance/gateway"
)

func TestGatewayPortsAndStop(t *testing.T) {
	const segs = "segments:\n  - {name: devices, interface: eth1, clients: [10.30.0.0/24]}\n  - {name: lab, interface: eth2, clients: [10.40.0.0/24]}\n"
	tests := []struct {
		name     string
		gateway  string
		wantErr  string // a substring of the error; "" for none
		wantPort map[string][]gateway.Port
		wantOpen bool
	}{
		{"defaults", "  segments: [devices]\n", "",
			map[string][]gateway.Port{"devices": {{Proto: unix.IPPROTO_TCP, Num: 80}, {Proto: unix.IPPROTO_TCP, Num: 443}}}, false},
		{"per segment", "  segments: [devices, lab]\n  ports: [443]\n  segment_ports: {lab: [8443/tcp, 443/UDP, 443]}\n", "",
			map[string][]gateway.Port{"devices": {{Proto: unix.IPPROTO_TCP, Num: 443}}, "lab": {{Proto: unix.IPPROTO_TCP, Num: 8443}, {Proto: unix.IPPROTO_UDP, Num: 443}, {Proto: unix.IPPROTO_TCP, Num: 443}}}, false},
		{"open on stop", "  segments: [devices]\n  open_on_stop: true\n", "", nil, true},
		{"old fail_closed still loads", "  segments: [devices]\n  fail_closed: false\n", "", nil, false},
		{"fail_closed contradicts open_on_stop", "  fail_closed: true\n  open_on_stop: true\n", "gateway.fail_closed: contradicts", nil, false},
		{"bad port", "  ports: [80, 70000]\n", "gateway.ports[1]: want a port number", nil, false},
		{"bad protocol", "  ports: [80/sctp]\n", "gateway.ports[0]: want PORT", nil, false},
		{"no ports", "  ports: []\n", "gateway.ports: must list at least one port", nil, false},
		{"ports of an unrouted segment", "  segments: [devices]\n  segment_ports: {lab: [80]}\n", "gateway.segment_ports.lab: segment \"lab\" is not in gateway.segments", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("p.yaml", []byte("state: {dir: /tmp/x}\n"+segs+"gateway:\n"+tt.gateway))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for seg, want := range tt.wantPort {
				if diff := cmp.Diff(want, cfg.Gateway.PortsOf(seg)); diff != "" {
					t.Errorf("PortsOf(%s) (-want +got):\n%s", seg, diff)
				}
			}
			if cfg.Gateway.OpenOnStop != tt.wantOpen {
				t.Errorf("OpenOnStop = %v, want %v", cfg.Gateway.OpenOnStop, tt.wantOpen)
			}
		})
	}
}

package gateway

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyFrom(t *testing.T) {
	p := policyFile(t, "testdata/policies/site.yaml")
	if got, want := p.Hosts, []string{"updates.example.com", "pool.ntp.org"}; !cmp.Equal(got, want) {
		t.Errorf("Hosts = %v, want %v", got, want)
	}
	wantLookup := []Endpoint{
		{Addr: netip.MustParseAddr("192.0.2.53"), Proto: "udp", Port: 53},
		{Addr: netip.MustParseAddr("9.9.9.9"), Proto: "udp", Port: 53},
		{Addr: netip.MustParseAddr("149.112.112.112"), Proto: "tcp", Port: 5353},
	}
	if diff := cmp.Diff(wantLookup, p.Lookup, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	if len(p.Segments) != 2 || p.Segments[1].Device != "eth1.30" {
		t.Errorf("Segments = %+v, want clinical and lab-devices on eth1.30", p.Segments)
	}
	if _, ok := p.segment("management"); ok {
		t.Error("management is routed, want only the gateway.segments")
	}
}

func TestTimeout(t *testing.T) {
	p := Policy{Grace: 30 * time.Second, MaxTimeout: time.Hour}
	tests := []struct {
		ttl, want time.Duration
	}{
		{0, 30 * time.Second},
		{300 * time.Second, 330 * time.Second},
		{48 * time.Hour, time.Hour},
		{1500 * time.Microsecond, 30*time.Second + time.Millisecond},
	}
	for _, tt := range tests {
		if got := p.timeout(tt.ttl); got != tt.want {
			t.Errorf("timeout(%v) = %v, want %v", tt.ttl, got, tt.want)
		}
	}
	if got := (&Policy{}).timeout(0); got != time.Second {
		t.Errorf("timeout(0) without grace = %v, want the 1s floor", got)
	}
}

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in      string
		want    Destination
		wantErr bool
	}{
		{"Updates.Example.com.", Destination{Host: "updates.example.com"}, false},
		{"192.0.2.1", Destination{Prefix: netip.MustParsePrefix("192.0.2.1/32")}, false},
		{"::ffff:192.0.2.1", Destination{Prefix: netip.MustParsePrefix("192.0.2.1/32")}, false},
		{"2001:db8::/32", Destination{Prefix: netip.MustParsePrefix("2001:db8::/32")}, false},
		{"192.0.2.1/24", Destination{}, true},
		{"localhost", Destination{}, true},
		{"1.2.3.999", Destination{}, true},
		{"-bad.example", Destination{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDestination(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDestination(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

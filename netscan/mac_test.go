package netscan

import (
	"strings"
	"testing"
)

func TestMAC(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		wantErr          bool
		want             string
		local, multicast bool
	}{
		{name: "universal", in: "00:07:4D:12:34:56", want: "00:07:4d:12:34:56"},
		{name: "randomised", in: "7a:11:22:33:44:55", want: "7a:11:22:33:44:55", local: true},
		{name: "multicast", in: "01:00:5e:00:00:fb", want: "01:00:5e:00:00:fb", multicast: true},
		{name: "dashes", in: "00-07-4d-12-34-56", want: "00:07:4d:12:34:56"},
		{name: "eui64 refused", in: "00:07:4d:12:34:56:78:9a", wantErr: true},
		{name: "garbage", in: "zebra", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMAC(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMAC(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := m.String(); got != tt.want {
				t.Errorf("ParseMAC(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			if got := m.LocallyAdministered(); got != tt.local {
				t.Errorf("%s.LocallyAdministered() = %v, want %v", m, got, tt.local)
			}
			if got := m.Multicast(); got != tt.multicast {
				t.Errorf("%s.Multicast() = %v, want %v", m, got, tt.multicast)
			}
			var back MAC
			if err := back.UnmarshalText([]byte(m.String())); err != nil || back != m {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", m, back, err, m)
			}
		})
	}
}

func TestCleanValue(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "  Zebra ZT410  ", "Zebra ZT410"},
		{"control", "a\x00b\r\nc", "a b  c"},
		{"invalid utf8", "ab\xffc", "ab\uFFFDc"},
		{"long", strings.Repeat("é", 200), strings.Repeat("é", MaxFactLen/2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CleanValue(tt.in); got != tt.want {
				t.Errorf("CleanValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestObservationAdd(t *testing.T) {
	var o Observation
	o.Add(KeyHostname, "pos-1")
	o.Add(KeyHostname, "pos-1")
	o.Add(KeyHostname, " ")
	o.Add(KeyTCPOpen, "80")
	o.Add(KeyTCPOpen, "443")
	if got := len(o.Facts); got != 3 {
		t.Fatalf("len(Facts) = %d, want 3: %v", got, o.Facts)
	}
	if got := o.Get(KeyHostname); got != "pos-1" {
		t.Errorf("Get(hostname) = %q, want pos-1", got)
	}
	if got := strings.Join(o.All(KeyTCPOpen), ","); got != "80,443" {
		t.Errorf("All(tcp.open) = %q, want 80,443", got)
	}
}

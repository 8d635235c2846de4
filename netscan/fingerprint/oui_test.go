package fingerprint

import (
	"testing"

	"github.com/patchgate/patchgate/netscan"
)

func TestVendor(t *testing.T) {
	tests := []struct {
		name, mac, want string
	}{
		{"ma-l zebra", "00:07:4d:10:20:30", "Zebra Technologies"},
		{"ma-l symbol block now zebra", "00:a0:f8:44:55:66", "Zebra Technologies"},
		{"ma-l axis", "00:40:8c:01:02:03", "AXIS COMMUNICATIONS"},
		{"randomised", "7a:11:22:33:44:55", ""},
		{"multicast", "01:00:5e:00:00:fb", ""},
		{"zero", "00:00:00:00:00:00", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := netscan.ParseMAC(tt.mac)
			if err != nil {
				t.Fatal(err)
			}
			if got := Vendor(m); got != tt.want {
				t.Errorf("Vendor(%s) = %q, want %q", tt.mac, got, tt.want)
			}
		})
	}
}

// TestVendorBlocks checks that the longer MA-M and MA-S assignments win
// over the MA-L block they were carved from, using entries of the table
// itself.
func TestVendorBlocks(t *testing.T) {
	tab, err := loadOUI()
	if err != nil {
		t.Fatalf("embedded oui table: %v", err)
	}
	if n := len(tab.blocks[0].prefixes); n < 20000 {
		t.Fatalf("24-bit block has %d prefixes, want the whole registry", n)
	}
	for bi, shift := range [3]uint{24, 20, 12} {
		blk := tab.blocks[bi]
		for _, i := range []int{0, len(blk.prefixes) / 2, len(blk.prefixes) - 1} {
			p := blk.prefixes[i] << shift
			var m netscan.MAC
			for j := range m {
				m[j] = byte(p >> (40 - 8*j))
			}
			if !m.Unicast() || m.LocallyAdministered() {
				continue
			}
			if got, want := Vendor(m), tab.vendors[blk.vendor[i]]; got != want {
				t.Errorf("block %d: Vendor(%s) = %q, want %q", bi, m, got, want)
			}
		}
	}
}

func FuzzParseOUI(f *testing.F) {
	f.Add(ouiData[:64])
	f.Add([]byte{0x1f, 0x8b})
	// Invariant: parseOUI never panics on any input and never returns a
	// table together with an error.
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := parseOUI(b)
		if err != nil && tab != nil {
			t.Errorf("parseOUI returned a table and %v", err)
		}
	})
}

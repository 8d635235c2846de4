package passive

import (
	"testing"

	"github.com/patchgate/patchgate/netscan"
)

// FuzzPayloads: the payload parsers the active prober also calls (mDNS,
// SSDP, NetBIOS, LLDP) never panic, and whatever they add is clean.
func FuzzPayloads(f *testing.F) {
	f.Add(byte(0), []byte(ssdpNotifyMsg))
	f.Add(byte(1), nbnsRegistration("RX-WS-01", 0, false, ipWS))
	f.Add(byte(1), nbnsAnswer("RX-SRV", ipWS))
	f.Add(byte(3), []byte{0x02, 0x07, 0x04, 0, 0x1b, 0x54, 1, 2, 3, 0, 0})
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		var o netscan.Observation
		var err error
		switch which % 4 {
		case 0:
			_, err = ParseSSDP(b, &o)
		case 1:
			_, err = ParseNBNS(b, &o)
		case 2:
			_, err = ParseMDNS(b, &o)
		case 3:
			err = ParseLLDP(b, &o)
		}
		_ = err
		for _, fa := range o.Facts {
			if fa.Value == "" || netscan.CleanValue(fa.Value) != fa.Value {
				t.Errorf("unclean fact %q", fa)
			}
		}
	})
}

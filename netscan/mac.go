package netscan

import (
	"encoding/hex"
	"fmt"
	"net"
)

// MAC is an EUI-48 hardware address. The zero value means "unknown". MAC is
// comparable, so it serves as a map key.
type MAC [6]byte

// MACFrom copies a 6-byte hardware address; any other length gives the zero MAC.
func MACFrom(b []byte) MAC {
	var m MAC
	if len(b) == 6 {
		copy(m[:], b)
	}
	return m
}

// ParseMAC parses "aa:bb:cc:dd:ee:ff" (or with dashes, or dotted) into a MAC.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, fmt.Errorf("netscan: parse mac %q: %w", s, err)
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("netscan: parse mac %q: not 6 bytes", s)
	}
	return MACFrom(hw), nil
}

// IsZero reports whether m is the unknown (all-zero) address.
func (m MAC) IsZero() bool { return m == MAC{} }

// Broadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) Broadcast() bool { return m == MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }

// Multicast reports whether the group bit (I/G) is set.
func (m MAC) Multicast() bool { return m[0]&0x01 != 0 }

// LocallyAdministered reports whether the U/L bit is set: the address was not
// assigned by the IEEE to a vendor. Phones and laptops use such "randomised"
// MACs for privacy, so one never identifies a device on its own.
func (m MAC) LocallyAdministered() bool { return m[0]&0x02 != 0 }

// Unicast reports whether m names one real station: not zero, not group.
func (m MAC) Unicast() bool { return !m.IsZero() && !m.Multicast() }

// HardwareAddr returns m as a net.HardwareAddr (a new slice).
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

// String formats m as lower-case "aa:bb:cc:dd:ee:ff".
func (m MAC) String() string {
	var b [17]byte
	for i, c := range m {
		if i > 0 {
			b[i*3-1] = ':'
		}
		hex.Encode(b[i*3:i*3+2], []byte{c})
	}
	return string(b[:])
}

// MarshalText implements encoding.TextMarshaler.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

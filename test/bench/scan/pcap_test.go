package scan

import (
	"time"

	"github.com/gopacket/gopacket"
)

func gopacketInfo(t time.Time, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: t, CaptureLength: n, Length: n}
}

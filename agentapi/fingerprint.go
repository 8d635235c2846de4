package agentapi

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// Fingerprint is the SHA-256 of a DER certificate as upper-case hex pairs separated by
// colons, the form browsers show: the appliance prints it (console banner, logs) and
// an agent pins what an admin copies from there (appliance_fingerprint).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

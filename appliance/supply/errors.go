package supply

import (
	"errors"
	"fmt"
)

// Reasons a source's input is refused: the reason detail of source.rejected audit
// records and the reason label of patchgate_supply_rejections_total.
const (
	reasonChecksum   = "checksum"    // a sha256 other than the pinned or listed one
	reasonSize       = "size"        // a size other than the listed one
	reasonSignature  = "signature"   // no, a bad or a foreign OpenPGP signature
	reasonKeyExpired = "key_expired" // the pinned key had expired
	reasonKeyRevoked = "key_revoked" // the pinned key is revoked
	reasonStale      = "stale"       // an InRelease past its Valid-Until
	reasonMalformed  = "malformed"   // a checksum file, manifest or index that does not parse
	reasonHTML       = "html"        // an HTML page where a file was expected
	reasonTooLarge   = "too_large"   // more bytes than allowed (an endless body)
	reasonStatus     = "status"      // an HTTP status other than 200/206
	reasonDeadline   = "deadline"    // the check's timeout passed
	reasonNetwork    = "unreachable" // connection refused, reset, DNS...
	reasonLocal      = "local"       // the appliance's own disk or database
	reasonWindow     = "window"      // the download window closed (not a rejection)
)

// Rejection is why a check refused what a source offered. Nothing of it is staged.
type Rejection struct {
	Reason string // one of the reasons above
	Msg    string
}

func (r *Rejection) Error() string { return r.Msg }

func reject(reason, format string, args ...any) error {
	return &Rejection{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// reasonOf is err's reason, reasonNetwork for anything not classified.
func reasonOf(err error) string {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return reasonNetwork
}

// within prefixes a rejection's message with where it happened, keeping its reason.
func within(where string, err error) error {
	var r *Rejection
	if errors.As(err, &r) {
		return &Rejection{Reason: r.Reason, Msg: where + ": " + r.Msg}
	}
	return fmt.Errorf("%s: %w", where, err)
}

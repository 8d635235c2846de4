package supply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/conf"
)

// ErrBadSource is returned by CheckOnce for a source the config check would refuse.
var ErrBadSource = errors.New("supply: bad source")

// CheckOnce checks a source that is not in the config, once, with the same download,
// verification, staging, audit and metrics as a configured one: what it stages is a
// candidate of source c.Name. Only kind url (a pinned sha256 or a checksums_url) is
// taken: it needs no key file. It is how an admin turns what a device asked a vendor
// host for into a candidate. A name of a configured source, or a source the config
// check refuses, is ErrBadSource (naming the problem); a refused download is the
// returned Status (Result "rejected", Reason, Error), not an error.
func (s *Service) CheckOnce(ctx context.Context, c Source) (Status, error) {
	if c.Kind != KindURL {
		return Status{}, fmt.Errorf("%w: kind %q: only url is checked once", ErrBadSource, c.Kind)
	}
	var ps conf.Problems
	checkName("source", c.Name, &ps)
	c.validate("source", &ps)
	if len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.String()
		}
		return Status{}, fmt.Errorf("%w: %s", ErrBadSource, strings.Join(msgs, "; "))
	}
	if s.source(c.Name) != nil {
		return Status{}, fmt.Errorf("%w: %q is a configured source: check it with POST /api/v1/sources/%s/check", ErrBadSource, c.Name, c.Name)
	}
	c = c.withDefaults()
	src := &source{cfg: c, st: Status{Name: c.Name, Kind: c.Kind, URL: c.URL + c.ChecksumsURL, Interval: "once", Result: "never"}}
	s.check(ctx, src, true) // an admin asked for it: like "check now", not held to a download window
	return src.status(), nil
}

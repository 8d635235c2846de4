package supply

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/patchgate/patchgate/appliance/store/storetest"
	"github.com/patchgate/patchgate/appliance/supply/supplytest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// t0 is the fake clock's start; keys and signatures are made an hour before.
var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

// signedAt is when the fake vendors' keys and signatures are made.
var signedAt = t0.Add(-time.Hour)

// Short names for the fake vendor's helpers (supplytest), dated signedAt.
var (
	sum           = supplytest.Sum
	gz            = supplytest.Gz
	xzPack        = supplytest.XZ
	armoredPublic = supplytest.ArmoredPublic
)

func newVendor(t *testing.T) *supplytest.Vendor { return supplytest.NewVendor(t, signedAt) }

// newKey makes a vendor key at signedAt; lifetime 0 never expires.
func newKey(t *testing.T, lifetime time.Duration) *openpgp.Entity {
	return supplytest.NewKey(t, signedAt, lifetime)
}

func detachSign(t *testing.T, e *openpgp.Entity, msg []byte) []byte {
	return supplytest.DetachSign(t, e, signedAt, msg)
}

// events records what a Service reports.
type events struct {
	mu       sync.Mutex
	rejected []Rejected
	staged   []Candidate
}

func (e *events) Rejected(_ context.Context, r Rejected) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rejected = append(e.rejected, r)
	return nil
}

func (e *events) Staged(_ context.Context, c Candidate) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.staged = append(e.staged, c)
	return nil
}

func openService(t *testing.T, clk clock.Clock, ev Events, srcs ...Source) *Service {
	t.Helper()
	var ps conf.Problems
	Section(srcs).Validate("sources", &ps)
	if len(ps) > 0 {
		t.Fatalf("test sources do not validate: %v", ps)
	}
	s, err := Open(context.Background(), storetest.Open(t), Section(srcs), Options{Dir: t.TempDir(), Clock: clk, Events: ev})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func hasProblemNaming(ps []health.Problem, name string) bool {
	for _, p := range ps {
		if strings.Contains(p.Text, "source "+name+":") {
			return true
		}
	}
	return false
}

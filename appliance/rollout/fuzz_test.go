package rollout

import (
	"strings"
	"testing"
	"time"
)

// FuzzWindow: any cron expression, zone and duration an admin sends either fails to
// compile with an ErrInvalid, or gives a schedule whose state at any instant is
// consistent: open means Start <= t < End; closed means the next opening (if any) is
// after t and ends after it starts.
func FuzzWindow(f *testing.F) {
	f.Add("0 22 * * *", "America/New_York", int64(6*3600), int64(1772900000))
	f.Add("30 2 * * *", "America/New_York", int64(3600), int64(1772946000))
	f.Add("30 1 * * sun", "Europe/Berlin", int64(1800), int64(1793400000))
	f.Add("@monthly", "Australia/Lord_Howe", int64(7*24*3600), int64(0))
	f.Add("*/7 * 31 2 *", "UTC", int64(60), int64(1700000000))
	f.Fuzz(func(t *testing.T, expr, zone string, secs, at int64) {
		w := Window{Name: "w", Cron: expr, Zone: zone, Duration: Duration(time.Duration(secs) * time.Second)}
		s, err := w.Compile()
		if err != nil {
			if !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("Compile error %v does not wrap ErrInvalid", err)
			}
			return
		}
		now := time.Unix(at%(1<<33), 0).UTC()
		op := s.At(now)
		switch {
		case op.Open && (now.Before(op.Start) || !now.Before(op.End)):
			t.Fatalf("At(%v) = open %v..%v, which does not contain it", now, op.Start, op.End)
		case !op.Open && !op.Start.IsZero() && (!op.Start.After(now) || !op.End.After(op.Start)):
			t.Fatalf("At(%v) = closed, next %v..%v", now, op.Start, op.End)
		}
	})
}

// FuzzSplitSecret: a credential or token from the network never panics the parser, and
// what it accepts has the prefix, a bounded id and a secret.
func FuzzSplitSecret(f *testing.F) {
	f.Add("pga1.ag-0123456789abcdef.c2VjcmV0")
	f.Add("pge1..x")
	f.Add("pga1.a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := splitSecret(s, credPrefix)
		if ok && (id == "" || len(id) > 64 || secret == "" || !strings.HasPrefix(s, credPrefix+".")) {
			t.Fatalf("splitSecret(%q) accepted id %q secret %q", s, id, secret)
		}
	})
}

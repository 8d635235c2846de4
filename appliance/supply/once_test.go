package supply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/clock"
)

// A source that is not configured is checked once: a verified file becomes a candidate
// of that source; a wrong pin is a rejected status with nothing staged; a source the
// config check refuses, another kind, or a configured name is ErrBadSource.
func TestCheckOnce(t *testing.T) {
	v := newVendor(t)
	fw := []byte("printer firmware x")
	v.Put("/firmware/x.bin", fw)
	configured := Source{Name: "configured", Kind: KindURL, URL: v.URL("/firmware/x.bin"), SHA256: sum(fw)}
	ev := &events{}
	s := openService(t, clock.NewFake(t0), ev, configured)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		src    Source
		bad    string // ErrBadSource naming this
		result string
		staged int
	}{
		{"verified", Source{Name: "updates.vendor.example", Kind: KindURL, URL: v.URL("/firmware/x.bin"), SHA256: sum(fw)}, "", "ok", 1},
		{"again: nothing new", Source{Name: "updates.vendor.example", Kind: KindURL, URL: v.URL("/firmware/x.bin"), SHA256: sum(fw)}, "", "ok", 0},
		{"wrong pin", Source{Name: "other.vendor.example", Kind: KindURL, URL: v.URL("/firmware/x.bin"), SHA256: sum([]byte("no"))}, "", "rejected", 0},
		{"no pin", Source{Name: "a.example", Kind: KindURL, URL: v.URL("/firmware/x.bin")}, "source.sha256", "", 0},
		{"bad name", Source{Name: "A B", Kind: KindURL, URL: v.URL("/firmware/x.bin"), SHA256: sum(fw)}, "source.name", "", 0},
		{"not a URL", Source{Name: "a.example", Kind: KindURL, URL: "ftp://x/y", SHA256: sum(fw)}, "source.url", "", 0},
		{"another kind", Source{Name: "a.example", Kind: KindImport, Dir: t.TempDir()}, "only url", "", 0},
		{"configured name", configured, "configured source", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := s.CheckOnce(ctx, tc.src)
			if tc.bad != "" {
				if !errors.Is(err, ErrBadSource) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("CheckOnce = %v, want ErrBadSource naming %q", err, tc.bad)
				}
				return
			}
			if err != nil || st.Result != tc.result || st.NewLast != tc.staged {
				t.Fatalf("CheckOnce = %+v, %v; want %s staging %d", st, err, tc.result, tc.staged)
			}
		})
	}
	cs, err := s.Candidates(ctx, "updates.vendor.example")
	if err != nil || len(cs) != 1 || cs[0].Name != "x.bin" || cs[0].SHA256 != sum(fw) {
		t.Fatalf("candidates %+v, %v; want x.bin", cs, err)
	}
	if len(ev.rejected) != 1 || len(ev.staged) != 1 {
		t.Fatalf("events: %d rejected, %d staged; want 1 and 1", len(ev.rejected), len(ev.staged))
	}
	if got := s.Sources(); len(got) != 1 {
		t.Fatalf("sources after one-off checks: %+v, want the configured one only", got)
	}
}

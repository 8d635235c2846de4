package tuf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/tuf"
)

func TestSiteSectionValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*tuf.Site)
		want string // the key of the problem; "" for none
	}{
		{"defaults", func(*tuf.Site) {}, ""},
		{"resign too rare", func(s *tuf.Site) { s.ResignEvery = conf.Duration(13 * time.Hour) }, "tuf.site.resign_every"},
		{"zero resign", func(s *tuf.Site) { s.ResignEvery = 0 }, "tuf.site.resign_every"},
		{"snapshot shorter than timestamp", func(s *tuf.Site) { s.SnapshotExpiry = conf.Duration(time.Hour) }, "tuf.site.snapshot_expiry"},
		{"no warning", func(s *tuf.Site) { s.WarnBefore = 0 }, "tuf.site.warn_before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := tuf.DefaultSection()
			tc.edit(&sec.Site)
			var ps conf.Problems
			sec.Validate("tuf", &ps)
			var keys []string
			for _, p := range ps {
				keys = append(keys, p.Key)
			}
			got := strings.Join(keys, ",")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("problems at %q, want %q", got, tc.want)
			}
		})
	}
}

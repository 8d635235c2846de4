package tuf_test

import (
	"testing"
	"time"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/conf/conftest"
	"github.com/patchgate/patchgate/tuf"
)

func TestSiteSectionValidate(t *testing.T) {
	conftest.Run(t, "tuf", tuf.DefaultSection, []conftest.Case[tuf.Section]{
		{Name: "defaults", Edit: func(*tuf.Section) {}},
		{Name: "resign too rare", Edit: func(s *tuf.Section) { s.Site.ResignEvery = conf.Duration(13 * time.Hour) }, Want: "tuf.site.resign_every"},
		{Name: "zero resign", Edit: func(s *tuf.Section) { s.Site.ResignEvery = 0 }, Want: "tuf.site.resign_every"},
		{Name: "snapshot shorter than timestamp", Edit: func(s *tuf.Section) { s.Site.SnapshotExpiry = conf.Duration(time.Hour) }, Want: "tuf.site.snapshot_expiry"},
		{Name: "no warning", Edit: func(s *tuf.Section) { s.Site.WarnBefore = 0 }, Want: "tuf.site.warn_before"},
	}, nil)
}

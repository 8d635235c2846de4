package appliance

import (
	"context"
	"fmt"

	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/tuf"
)

// keepFresh runs a tuf.Refresher (tuf.site settings) for the repository name the
// appliance publishes in dir: its timestamp and snapshot are re-signed with the
// online keys in DIR/keys well before they expire, and every role nearing expiry is
// reported (health, patchgate_tuf_site_*). Targets are never signed here.
func (s *System) keepFresh(name, dir string) (*tuf.Refresher, error) {
	r, err := tuf.NewRefresher(s.cfg.TUF.Site.RefresherConfig(name, dir),
		tuf.Options{Logger: s.log.With("svc", "siterepo"), Registerer: s.registry, Clock: s.clock})
	if err != nil {
		return nil, fmt.Errorf("tuf.site %s: %w", name, err)
	}
	s.services = append(s.services, &siteRepoService{name: name, r: r})
	return r, nil
}

// siteRepoService runs one site repository's refresher.
type siteRepoService struct {
	name string
	r    *tuf.Refresher
}

func (s *siteRepoService) Name() string { return "siterepo-" + s.name }

// Ready is true from the start: a stale repository is a health problem.
func (s *siteRepoService) Ready() bool { return true }

func (s *siteRepoService) Run(ctx context.Context) error {
	s.r.Run(ctx)
	return nil
}

func (s *siteRepoService) Health() []health.Problem { return s.r.Health() }

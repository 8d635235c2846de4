package advisory

import (
	"context"
	"fmt"
	"time"
)

// storedStatus fills each feed's last success and document count from what is stored,
// so the status survives a restart.
func (s *Service) storedStatus(ctx context.Context) error {
	_, infos, err := loadCorpus(ctx, s.db)
	if err != nil {
		return fmt.Errorf("advisory: stored data: %w", err)
	}
	for _, in := range infos {
		if f := s.feed(in.Source); f != nil {
			at := in.FetchedAt
			f.st.LastSuccess, f.st.Documents = &at, in.Advisories+in.KEV
		}
	}
	return nil
}

func (f *feed) setNext(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.NextRun = &t
}

// Status is the feeds' state for the appliance's status page: each feed's last
// success, last error, document count and next run.
type Status struct {
	Feeds []FeedStatus `json:"feeds"`
}

// Status returns the feeds' state. It reads memory only: quick and safe for
// concurrent use.
func (s *Service) Status() Status {
	return Status{Feeds: s.Feeds()}
}

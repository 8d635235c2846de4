package agent

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestTrustUsesInjectedClock is the client conformance scenario test_faketime:
// metadata expiry is judged at the agent's reference time, never the system's.
func TestTrustUsesInjectedClock(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		tsExpiry time.Time // timestamp expiry as published
		at       time.Time // the agent's clock
		wantErr  bool
	}{
		{"fresh on both clocks", now.Add(24 * time.Hour), now, false},
		{"agent clock past expiry", now.Add(24 * time.Hour), now.Add(48 * time.Hour), true},
		{"expired on the system clock, fresh on the agent's", now.Add(-time.Hour), now.Add(-2 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := tuftest.New(t)
			repo.AddTarget("a.bin", []byte("hello"))
			repo.SetExpires("timestamp", tc.tsExpiry)
			repo.Publish()
			tr := &trust{repo: "demo", metaURL: repo.MetadataURL() + "/", pinned: repo.Root(),
				dir: t.TempDir(), http: &http.Client{}, now: func() time.Time { return tc.at }}
			ti, err := tr.targetInfo(context.Background(), "a.bin")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("targetInfo at %v = %+v, want an expiry error", tc.at, ti)
				}
				return
			}
			if err != nil || ti.Length != 5 {
				t.Fatalf("targetInfo at %v = %+v, %v; want length 5", tc.at, ti, err)
			}
		})
	}
}

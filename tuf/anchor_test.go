package tuf_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/tuf"
)

func snapshotVersion(t *testing.T, data []byte) int64 {
	t.Helper()
	md, err := metadata.Snapshot().FromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return md.Signed.Version
}

// TestMirrorAdvancesWhatVerified follows the conformance scenarios
// test_unsigned_metadata, test_snapshot_404 and test_targets_expired: when a
// refresh fails at one role, the roles before it that verified become the
// trusted ones (the rollback floor, kept across a restart), while devices
// keep getting the last consistent set.
func TestMirrorAdvancesWhatVerified(t *testing.T) {
	for _, tc := range []struct {
		name     string
		breakIt  func(e *mirrorEnv)
		fixIt    func(e *mirrorEnv)
		tsMoves  bool // the new timestamp becomes trusted
		snapMove bool // the new snapshot becomes trusted
	}{
		{"unsigned timestamp",
			func(e *mirrorEnv) { e.repo.SignWith("timestamp") },
			func(e *mirrorEnv) { e.repo.ResetSigning("timestamp") }, false, false},
		{"unsigned snapshot",
			func(e *mirrorEnv) { e.repo.SignWith("snapshot") },
			func(e *mirrorEnv) { e.repo.ResetSigning("snapshot") }, true, false},
		{"unsigned targets",
			func(e *mirrorEnv) { e.repo.SignWith("targets") },
			func(e *mirrorEnv) { e.repo.ResetSigning("targets") }, true, true},
		{"snapshot 404",
			func(e *mirrorEnv) {}, // see below: the new snapshot's file is not served
			func(e *mirrorEnv) {}, true, false},
		{"targets expired",
			func(e *mirrorEnv) { e.repo.SetExpires("targets", time.Now().Add(-time.Hour)) },
			func(e *mirrorEnv) { e.repo.SetExpires("targets", time.Now().Add(90*24*time.Hour)) }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirrorEnv(t)
			e.repo.AddTarget("old.bin", []byte("old"))
			e.repo.Publish()
			m := refreshed(t, e)
			before := m.Status()
			servedTS, err := m.Metadata(context.Background(), "timestamp.json")
			if err != nil {
				t.Fatal(err)
			}

			tc.breakIt(e)
			e.repo.AddTarget("new.bin", []byte("new"))
			e.repo.Publish()
			snapPath := fmt.Sprintf("/metadata/%d.snapshot.json", snapshotVersion(t, e.repo.Metadata("snapshot.json")))
			if tc.name == "snapshot 404" {
				e.repo.Handle(snapPath, http.NotFoundHandler())
			}
			if err := m.Refresh(context.Background()); err == nil {
				t.Fatalf("Refresh succeeded, want it to fail")
			}
			wantTS, wantSnap := before.TimestampVersion, before.SnapshotVersion
			if tc.tsMoves {
				wantTS++
			}
			if tc.snapMove {
				wantSnap++
			}
			check := func(m *tuf.Mirror, when string) {
				t.Helper()
				st := m.Status()
				if st.TrustedTimestampVersion != wantTS || st.TrustedSnapshotVersion != wantSnap {
					t.Errorf("%s: trusted timestamp, snapshot = %d, %d; want %d, %d", when,
						st.TrustedTimestampVersion, st.TrustedSnapshotVersion, wantTS, wantSnap)
				}
				// Devices still get the consistent set verified before.
				if st.TimestampVersion != before.TimestampVersion || st.SnapshotVersion != before.SnapshotVersion {
					t.Errorf("%s: served timestamp, snapshot = %d, %d; want the previous %d, %d", when,
						st.TimestampVersion, st.SnapshotVersion, before.TimestampVersion, before.SnapshotVersion)
				}
				if got, err := m.Metadata(context.Background(), "timestamp.json"); err != nil || string(got) != string(servedTS) {
					t.Errorf("%s: Metadata(timestamp.json) is not the previously served file (%v)", when, err)
				}
				if _, err := m.Target(context.Background(), "old.bin"); err != nil {
					t.Errorf("%s: Target(old.bin): %v", when, err)
				}
				if _, err := m.Target(context.Background(), "new.bin"); !errors.Is(err, tuf.ErrNotFound) {
					t.Errorf("%s: Target(new.bin) err = %v, want ErrNotFound", when, err)
				}
			}
			check(m, "after the failed refresh")
			check(e.mirror(t), "after a restart")

			tc.fixIt(e)
			e.repo.Handle(snapPath, nil)
			e.repo.Publish()
			m = e.mirror(t)
			if err := m.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh after the repair: %v", err)
			}
			if st := m.Status(); st.TimestampVersion != st.TrustedTimestampVersion || st.SnapshotVersion != st.TrustedSnapshotVersion {
				t.Errorf("after the repair served %d/%d, trusted %d/%d; want equal", st.TimestampVersion, st.SnapshotVersion,
					st.TrustedTimestampVersion, st.TrustedSnapshotVersion)
			}
			if _, err := m.Target(context.Background(), "new.bin"); err != nil {
				t.Errorf("Target(new.bin) after the repair: %v", err)
			}
		})
	}
}

// TestMirrorRollbackWithoutClientDir: with go-tuf's client directory lost
// (and either of the mirror's own files), an older timestamp is still
// refused and the superseded target is never served.
func TestMirrorRollbackWithoutClientDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
		remove  []string // state files removed besides client/
	}{
		{"client dir lost", false, nil},
		{"restart, client dir lost", true, nil},
		{"restart, client dir and trusted.json lost", true, []string{"trusted.json"}},
		{"restart, client dir and verified.json lost", true, []string{"verified.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newMirrorEnv(t)
			e.repo.AddTarget("a.bin", []byte("superseded"))
			e.repo.Publish()
			m := refreshed(t, e)
			oldTS := e.repo.Metadata("timestamp.json")
			e.repo.AddTarget("a.bin", []byte("current!!"))
			e.repo.Publish()
			if err := m.Refresh(context.Background()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}

			for _, f := range append([]string{"client"}, tc.remove...) {
				if err := os.RemoveAll(filepath.Join(e.dir, f)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.restart {
				m = e.mirror(t)
			}
			e.repo.ServeMetadata("timestamp.json", oldTS) // a rollback
			if err := m.Refresh(context.Background()); err == nil {
				t.Errorf("Refresh accepted an older timestamp")
			}
			ti, err := m.Target(context.Background(), "a.bin")
			if err == nil && ti.Length != int64(len("current!!")) {
				t.Errorf("Target(a.bin) = %+v: the superseded target is served", ti)
			}
		})
	}
}

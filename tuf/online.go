package tuf

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/atomicfile"
)

// lock takes the repository's write lock (flock on DIR/.lock), held across one
// operation: the daemon's refresher, a release approval and a `patchgate tuf`
// command on the same directory never interleave their reads and writes (an
// interleaved re-sign could list an older targets version after a publish).
func (p *Publisher) lock(op string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(p.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tuf: %s: lock: %w", op, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("tuf: %s: lock %s: %w", op, f.Name(), err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

func (p *Publisher) expiry(now time.Time, d Duration) time.Time {
	return now.Add(time.Duration(d)).Truncate(time.Second)
}

// signOnline signs the online roles: with meta, a new snapshot (version
// cur.Snapshot+1) listing it, else the current snapshot's bytes (oldSnap)
// stay; then a new timestamp (version cur.Timestamp+1) over the snapshot.
func (p *Publisher) signOnline(root *metadata.Metadata[metadata.RootType], now time.Time, cur Published, meta map[string]*metadata.MetaFiles, oldSnap []byte) (snapBytes, tsBytes []byte, err error) {
	snapBytes, snapVersion := oldSnap, cur.Snapshot
	if meta != nil {
		snap := metadata.Snapshot(p.expiry(now, p.settings.SnapshotExpires))
		snap.Signed.Version = cur.Snapshot + 1
		snap.Signed.Meta = meta
		if err := p.signWith(snap, metadata.SNAPSHOT, root.Signed.Roles[metadata.SNAPSHOT]); err != nil {
			return nil, nil, err
		}
		if snapBytes, err = snap.ToBytes(true); err != nil {
			return nil, nil, err
		}
		snapVersion = snap.Signed.Version
	}
	ts := metadata.Timestamp(p.expiry(now, p.settings.TimestampExpires))
	ts.Signed.Version = cur.Timestamp + 1
	sum := sha256.Sum256(snapBytes)
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snapVersion, Length: int64(len(snapBytes)), Hashes: metadata.Hashes{"sha256": sum[:]}}
	if err := p.signWith(ts, metadata.TIMESTAMP, root.Signed.Roles[metadata.TIMESTAMP]); err != nil {
		return nil, nil, err
	}
	tsBytes, err = ts.ToBytes(true)
	return snapBytes, tsBytes, err
}

// writeTop writes the new top-level files, each atomically, timestamp last;
// nil bytes are left as they are.
func (p *Publisher) writeTop(targetsVersion int64, targets []byte, snapVersion int64, snap, ts []byte) error {
	type file struct {
		name string
		data []byte
	}
	var writes []file
	if targets != nil {
		writes = append(writes, file{fmt.Sprintf("%d.targets.json", targetsVersion), targets}, file{"targets.json", targets})
	}
	if snap != nil {
		writes = append(writes, file{fmt.Sprintf("%d.snapshot.json", snapVersion), snap}, file{"snapshot.json", snap})
	}
	writes = append(writes, file{"timestamp.json", ts})
	for _, w := range writes {
		if err := atomicfile.Write(filepath.Join(p.metadataDir(), w.name), w.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Resign re-signs the online roles without touching targets: a new timestamp
// over the current snapshot, and with snapshot also a new snapshot listing
// what the current one lists. Targets are signed only by Publish (a release).
// It fails, writing nothing, when root has expired or a key is missing.
func (p *Publisher) Resign(ctx context.Context, snapshot bool) (Published, error) {
	unlock, err := p.lock("re-sign")
	if err != nil {
		return Published{}, err
	}
	defer unlock()
	return p.resign(ctx, snapshot)
}

func (p *Publisher) resign(ctx context.Context, snapshot bool) (Published, error) {
	now, root, err := p.liveRoot(ctx, "re-sign")
	if err != nil {
		return Published{}, err
	}
	snapRaw, err := os.ReadFile(filepath.Join(p.metadataDir(), "snapshot.json"))
	if err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: %w", err)
	}
	snap, err := metadata.Snapshot().FromBytes(snapRaw)
	if err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: snapshot.json: %w", err)
	}
	ts, err := metadata.Timestamp().FromFile(filepath.Join(p.metadataDir(), "timestamp.json"))
	if err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: %w", err)
	}
	cur := Published{Timestamp: ts.Signed.Version, Snapshot: snap.Signed.Version}
	if tm := snap.Signed.Meta["targets.json"]; tm != nil {
		cur.Targets = tm.Version
	}
	var meta map[string]*metadata.MetaFiles
	if snapshot {
		meta = maps.Clone(snap.Signed.Meta)
	}
	snapBytes, tsBytes, err := p.signOnline(root, now, cur, meta, snapRaw)
	if err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: %w", err)
	}
	// Targets may have expired (the health check says so); timestamp and
	// snapshot are checked as a client would, from the published root chain.
	if err := p.selfCheck(now, tsBytes, snapBytes, nil); err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: self-check: %w", err)
	}
	out := Published{Targets: cur.Targets, Snapshot: cur.Snapshot, Timestamp: cur.Timestamp + 1, Expires: p.expiry(now, p.settings.TimestampExpires)}
	var newSnap []byte
	if snapshot {
		newSnap, out.Snapshot = snapBytes, cur.Snapshot+1
	}
	if err := p.writeTop(0, nil, out.Snapshot, newSnap, tsBytes); err != nil {
		return Published{}, fmt.Errorf("tuf: re-sign: %w", err)
	}
	return out, nil
}

// RoleExpiry is one published top-level role's version and expiry.
type RoleExpiry struct {
	Version int64
	Expires time.Time
}

// Expiries reads the published top-level roles' versions and expiries
// (root, targets, snapshot, timestamp), as they are on disk.
func (p *Publisher) Expiries() (map[string]RoleExpiry, error) {
	out := map[string]RoleExpiry{}
	var errs []error
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		data, err := os.ReadFile(filepath.Join(p.metadataDir(), role+".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var md struct {
			Signed struct {
				Type    string    `json:"_type"`
				Version int64     `json:"version"`
				Expires time.Time `json:"expires"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(data, &md); err != nil || md.Signed.Type != role {
			errs = append(errs, fmt.Errorf("%s.json: not %s metadata (%v)", role, role, err))
			continue
		}
		out[role] = RoleExpiry{Version: md.Signed.Version, Expires: md.Signed.Expires}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("tuf: read expiries of %s: %w", p.dir, err)
	}
	return out, nil
}

// OnlineLifetimes are the lifetimes the publisher gives snapshot and timestamp.
func (p *Publisher) OnlineLifetimes() (snapshot, timestamp time.Duration) {
	return time.Duration(p.settings.SnapshotExpires), time.Duration(p.settings.TimestampExpires)
}

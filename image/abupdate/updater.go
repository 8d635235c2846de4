package abupdate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/patchgate/patchgate/atomicfile"
)

// DefaultTries is how many boots a new version gets to prove itself.
const DefaultTries = 3

// Artifact is one file of a version as delivered (a verified TUF target, or a file the
// admin supplied): its bytes, and the length and SHA-256 they must have. Install checks
// both while it streams, and throws the result away on a mismatch.
type Artifact struct {
	R      io.Reader
	Length int64
	SHA256 string // hex
}

// Updater installs versions into the inactive root slot and the ESP.
type Updater struct {
	ESP         string    // where the ESP is mounted (/efi)
	Slots       [2]string // root slot A and B (/dev/disk/by-partlabel/patchgate-root-a, -b)
	RunningRoot string    // the running root's filesystem UUID (RunningRootUUID)
	Tries       int       // boot tries for a new version; 0 means DefaultTries
	Log         *slog.Logger
}

// Status is what the status page shows: the running version, and every entry.
type Status struct {
	Running string  // version of the running entry, "" if unknown
	Entries []Entry // in systemd-boot's order of preference
}

// Pending returns the entries installed but not proven yet.
func (s Status) Pending() []Entry {
	var out []Entry
	for _, e := range s.Entries {
		if e.State() == Pending {
			out = append(out, e)
		}
	}
	return out
}

// Status lists the entries and tells which one is running.
func (u *Updater) Status() (Status, error) {
	es, err := Entries(u.ESP)
	if err != nil {
		return Status{}, err
	}
	st := Status{Entries: es}
	if e, ok := find(es, func(e Entry) bool { return e.RootUUID == u.RunningRoot }); ok {
		st.Running = e.Version
	}
	return st, nil
}

func find(es []Entry, pred func(Entry) bool) (Entry, bool) {
	for _, e := range es {
		if pred(e) {
			return e, true
		}
	}
	return Entry{}, false
}

// inactive returns the slot not holding the running root.
func (u *Updater) inactive() (string, string, error) {
	var ids [2]string
	for i, s := range u.Slots {
		id, err := FSUUID(s)
		if err != nil {
			return "", "", err
		}
		ids[i] = id
	}
	switch {
	case u.RunningRoot == "":
		return "", "", errors.New("abupdate: running root unknown")
	case ids[0] == u.RunningRoot && ids[1] == u.RunningRoot:
		return "", "", fmt.Errorf("abupdate: both slots hold root %s", u.RunningRoot)
	case ids[0] == u.RunningRoot:
		return u.Slots[1], ids[1], nil
	case ids[1] == u.RunningRoot:
		return u.Slots[0], ids[0], nil
	}
	return "", "", fmt.Errorf("abupdate: the running root %s is in neither slot", u.RunningRoot)
}

// Install writes version's root image into the inactive slot and its UKI onto the ESP
// with a boot counter, so that the next boot tries it. Entries that booted the root
// being overwritten are removed first. On any error the new version is left unbootable
// (no UKI names a half-written root) and the running one stays the default.
func (u *Updater) Install(ctx context.Context, version string, root, uki Artifact) error {
	if err := CheckVersion(version); err != nil {
		return err
	}
	es, err := Entries(u.ESP)
	if err != nil {
		return err
	}
	if e, ok := find(es, func(e Entry) bool { return e.Version == version }); ok {
		return fmt.Errorf("abupdate: install %s: already installed as %s", version, e.File)
	}
	slot, _, err := u.inactive()
	if err != nil {
		return fmt.Errorf("abupdate: install %s: %w", version, err)
	}
	for _, e := range es {
		if e.RootUUID != u.RunningRoot {
			// It boots the slot about to be overwritten (oldID), or a root no slot holds.
			if err := os.Remove(filepath.Join(u.ESP, linuxDir, e.File)); err != nil {
				return fmt.Errorf("abupdate: install %s: remove old entry: %w", version, err)
			}
			u.log().Info("removed boot entry of the overwritten slot", "entry", e.File)
		}
	}
	if err := atomicfile.SyncDir(filepath.Join(u.ESP, linuxDir)); err != nil {
		return fmt.Errorf("abupdate: install %s: %w", version, err)
	}

	newID, err := writeSlot(ctx, slot, root)
	if err != nil {
		return fmt.Errorf("abupdate: install %s: root: %w", version, err)
	}
	if newID == "" || newID == u.RunningRoot {
		return fmt.Errorf("abupdate: install %s: root image has filesystem UUID %q; want a new ext4 filesystem", version, newID)
	}

	tries := u.Tries
	if tries <= 0 {
		tries = DefaultTries
	}
	final := filepath.Join(u.ESP, linuxDir, name(version, tries, 0))
	if err := writeUKI(ctx, final, uki, newID); err != nil {
		return fmt.Errorf("abupdate: install %s: uki: %w", version, err)
	}
	u.log().Info("installed appliance version", "version", version, "slot", slot, "root_uuid", newID, "entry", filepath.Base(final), "tries", tries)
	return nil
}

// Rollback marks the running entry bad (boot counter 0) so that the next boot starts
// the newest other good entry, which it returns. The caller reboots.
func (u *Updater) Rollback() (Entry, error) {
	es, err := Entries(u.ESP)
	if err != nil {
		return Entry{}, err
	}
	cur, ok := find(es, func(e Entry) bool { return e.RootUUID == u.RunningRoot })
	if !ok {
		return Entry{}, fmt.Errorf("abupdate: rollback: no boot entry for the running root %s", u.RunningRoot)
	}
	_, otherID, err := u.inactive()
	if err != nil {
		return Entry{}, fmt.Errorf("abupdate: rollback: %w", err)
	}
	prev, ok := find(es, func(e Entry) bool { return e.State() != Bad && e.RootUUID == otherID && otherID != "" })
	if !ok {
		return Entry{}, errors.New("abupdate: rollback: no previous version to go back to")
	}
	bad := name(cur.Version, 0, cur.TriesDone)
	dir := filepath.Join(u.ESP, linuxDir)
	if err := os.Rename(filepath.Join(dir, cur.File), filepath.Join(dir, bad)); err != nil {
		return Entry{}, fmt.Errorf("abupdate: rollback: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return Entry{}, fmt.Errorf("abupdate: rollback: %w", err)
	}
	u.log().Info("rolled back: running version marked bad", "bad", bad, "next", prev.File)
	return prev, nil
}

func (u *Updater) log() *slog.Logger {
	if u.Log != nil {
		return u.Log
	}
	return slog.New(slog.DiscardHandler)
}

// copyChecked copies exactly a.Length bytes of a.R to w, checking the SHA-256, and
// stops early when ctx is done.
func copyChecked(ctx context.Context, w io.Writer, a Artifact) error {
	want, err := hex.DecodeString(a.SHA256)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("want a hex SHA-256, got %q", a.SHA256)
	}
	if a.Length <= 0 {
		return fmt.Errorf("want a positive length, got %d", a.Length)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), &ctxReader{ctx: ctx, r: io.LimitReader(a.R, a.Length+1)})
	if err != nil {
		return err
	}
	if n != a.Length {
		return fmt.Errorf("got %d bytes, want %d", n, a.Length)
	}
	if got := h.Sum(nil); !equal(got, want) {
		return fmt.Errorf("sha256 %x, want %x", got, want)
	}
	return nil
}

func equal(a, b []byte) bool { return hex.EncodeToString(a) == hex.EncodeToString(b) }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writeSlot streams a root image into the slot and returns its filesystem UUID. On
// failure the slot is wiped so it holds no filesystem.
func writeSlot(ctx context.Context, slot string, a Artifact) (string, error) {
	f, err := os.OpenFile(slot, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Wipe first: until the copy is complete and checked, the slot is not bootable.
	if err := wipe(f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := copyChecked(ctx, f, a); err != nil {
		if werr := wipe(f); werr != nil {
			return "", fmt.Errorf("%w (and wiping the slot: %v)", err, werr)
		}
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return FSUUID(slot)
}

// writeUKI streams a UKI to a temporary file on the ESP, checks it names the root just
// written, and renames it into place. perm 0: FAT, the ESP's file system, may refuse a chmod.
func writeUKI(ctx context.Context, final string, a Artifact, rootID string) error {
	return atomicfile.WriteWith(final, 0, func(tmp *os.File) error {
		if err := copyChecked(ctx, tmp, a); err != nil {
			return err
		}
		got, err := ukiRootUUID(tmp.Name())
		if err != nil {
			return err
		}
		if got != rootID {
			return fmt.Errorf("it boots root=UUID=%s, but the root image written has %s", got, rootID)
		}
		return nil
	})
}

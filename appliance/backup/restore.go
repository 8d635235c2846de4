package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/clock"
)

// Errors a caller may branch on; every refusal wraps one of them.
var (
	ErrNotEmpty    = errors.New("state directory is not empty")
	ErrNewerSchema = errors.New("archive has a newer schema than this binary")
	ErrBadArchive  = errors.New("archive is damaged or not a Patchgate backup")
	ErrIdentity    = errors.New("no identity can decrypt the archive")
	ErrAuditChain  = errors.New("audit trail in the archive does not verify")
)

// RestoreOptions say where and how to restore.
type RestoreOptions struct {
	// StateDir receives the state. It must be empty or missing unless Force; with Force
	// an existing state directory is moved aside to StateDir.pre-restore-TIME.
	StateDir string
	// AuditDir receives an audit directory that was outside the state directory when the
	// backup was made; empty: StateDir/audit.
	AuditDir string
	// ConfigOut, when set, receives the archived config file (refused if it exists,
	// unless Force). It is always also kept as StateDir/restored/<name>.
	ConfigOut string
	Force     bool
	// Known are the schema versions this binary knows, by component; an archive with a
	// newer one, or a component not in Known, is refused.
	Known map[string]int
	// Actor is recorded in the audit trail's appliance.restore record.
	Actor   string
	Archive string // named in the record
	Clock   clock.Clock
	// MaxBytes bounds what the archive may unpack to (0: 64 GiB).
	MaxBytes int64
}

// Restore decrypts the archive in r with identities into a staging directory beside
// StateDir, checks it — every member listed in the manifest with its size and hash and
// nothing else, schema versions known to this binary, table digests, the audit chain
// (audit.Verify) — and only then moves it into place and records appliance.restore in
// the restored trail. On any refusal nothing is left behind.
func Restore(ctx context.Context, r io.Reader, ids []age.Identity, opts RestoreOptions) (*Manifest, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 30
	}
	if opts.Actor == "" {
		opts.Actor = "system:restore"
	}
	state := filepath.Clean(opts.StateDir)
	empty, err := isEmptyDir(state)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if !empty && !opts.Force {
		return nil, fmt.Errorf("restore: %w: %s (restore onto a fresh appliance, or pass --force to move it aside)", ErrNotEmpty, state)
	}
	if opts.ConfigOut != "" && !opts.Force {
		if _, err := os.Stat(opts.ConfigOut); err == nil {
			return nil, fmt.Errorf("restore: %w: config %s exists (pass --force to replace it)", ErrNotEmpty, opts.ConfigOut)
		}
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o750); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(state), "."+filepath.Base(state)+".restore-*")
	if err != nil {
		return nil, fmt.Errorf("restore: staging: %w", err)
	}
	defer os.RemoveAll(staging) // after a success only the emptied staging directory is left
	m, err := unpack(ctx, r, ids, staging, opts.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if newer := m.NewerSchemas(opts.Known); len(newer) > 0 {
		return nil, fmt.Errorf("restore: %w (made by Patchgate %s: %s); restore with that version or newer",
			ErrNewerSchema, m.ApplianceVersion, strings.Join(newer, ", "))
	}
	auditStaged := filepath.Join(staging, "state", "audit")
	if hasPrefix(m, prefixAudit) {
		auditStaged = filepath.Join(staging, "audit")
	}
	if err := checkStaged(ctx, m, filepath.Join(staging, "state", "patchgate.db"), auditStaged); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	if hasPrefix(m, prefixAudit) && opts.AuditDir != "" && !opts.Force {
		if empty, err := isEmptyDir(opts.AuditDir); err != nil || !empty {
			return nil, fmt.Errorf("restore: %w: audit directory %s (pass --force to move it aside)", ErrNotEmpty, opts.AuditDir)
		}
	}

	// Everything checked: move into place.
	var cfgName string
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, prefixConfig) {
			cfgName = strings.TrimPrefix(f.Path, prefixConfig)
			src := filepath.Join(staging, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Join(staging, "state", "restored"), 0o750); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
			if err := os.Rename(src, filepath.Join(staging, "state", "restored", cfgName)); err != nil {
				return nil, fmt.Errorf("restore: %w", err)
			}
		}
	}
	if !empty {
		aside := state + ".pre-restore-" + opts.Clock.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(state, aside); err != nil {
			return nil, fmt.Errorf("restore: move the old state aside: %w", err)
		}
	} else if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(filepath.Join(staging, "state"), state); err != nil {
		return nil, fmt.Errorf("restore: move the state into place (the state directory must be on the same filesystem as its parent): %w", err)
	}
	auditDir := filepath.Join(state, "audit")
	if hasPrefix(m, prefixAudit) {
		auditDir = opts.AuditDir
		if auditDir == "" {
			auditDir = filepath.Join(state, "audit")
		}
		if err := moveDir(filepath.Join(staging, "audit"), auditDir, opts.Force); err != nil {
			return nil, fmt.Errorf("restore: audit directory: %w", err)
		}
	}
	if err := atomicfile.SyncDir(filepath.Dir(state)); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if opts.ConfigOut != "" && cfgName != "" {
		b, err := os.ReadFile(filepath.Join(state, "restored", cfgName))
		if err != nil {
			return nil, fmt.Errorf("restore: config: %w", err)
		}
		if err := atomicfile.Write(opts.ConfigOut, b, 0o640); err != nil {
			return nil, fmt.Errorf("restore: config: %w", err)
		}
	}
	if err := recordRestore(ctx, state, auditDir, m, opts); err != nil {
		return m, fmt.Errorf("restore: the state is restored but the restore could not be recorded in its audit trail: %w", err)
	}
	return m, nil
}

// unpack decrypts and extracts the archive into dir, checking every member against the
// manifest (the last member).
func unpack(ctx context.Context, r io.Reader, ids []age.Identity, dir string, max int64) (*Manifest, error) {
	dr, err := age.Decrypt(r, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: the archive is encrypted to other recipients", ErrIdentity)
		}
		return nil, fmt.Errorf("%w: decrypt: %v", ErrBadArchive, err)
	}
	gz, err := gzip.NewReader(dr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	tr := tar.NewReader(gz)
	got := map[string]File{}
	var manifest []byte
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if manifest != nil {
			return nil, fmt.Errorf("%w: member %q after the manifest", ErrBadArchive, h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%w: member %q is not a regular file", ErrBadArchive, h.Name)
		}
		if h.Name == ManifestName {
			if h.Size > maxManifest {
				return nil, fmt.Errorf("%w: manifest of %d bytes", ErrBadArchive, h.Size)
			}
			if manifest, err = io.ReadAll(io.LimitReader(tr, h.Size)); err != nil {
				return nil, fmt.Errorf("%w: manifest: %v", ErrBadArchive, err)
			}
			continue
		}
		if err := checkMember(h.Name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if _, dup := got[h.Name]; dup {
			return nil, fmt.Errorf("%w: member %q twice", ErrBadArchive, h.Name)
		}
		if total += h.Size; h.Size < 0 || total > max {
			return nil, fmt.Errorf("%w: unpacks to more than %d bytes", ErrBadArchive, max)
		}
		f, err := extract(tr, h, filepath.Join(dir, filepath.FromSlash(h.Name)))
		if err != nil {
			return nil, err
		}
		got[h.Name] = f
	}
	// Drain: a truncated or tampered age stream fails only when read to its end.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	if manifest == nil {
		return nil, fmt.Errorf("%w: no %s (the archive is truncated?)", ErrBadArchive, ManifestName)
	}
	m, err := ParseManifest(manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	for _, f := range m.Files {
		g, ok := got[f.Path]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s is in the manifest but not in the archive", ErrBadArchive, f.Path)
		case g.Size != f.Size || g.SHA256 != f.SHA256:
			return nil, fmt.Errorf("%w: %s: size %d sha256 %.12s…, the manifest says size %d sha256 %.12s…", ErrBadArchive, f.Path, g.Size, g.SHA256, f.Size, f.SHA256)
		}
		delete(got, f.Path)
	}
	for p := range got {
		return nil, fmt.Errorf("%w: %s is in the archive but not in the manifest", ErrBadArchive, p)
	}
	if !hasPrefix(m, prefixState+"patchgate.db") {
		return nil, fmt.Errorf("%w: no database in the archive", ErrBadArchive)
	}
	return m, nil
}

func extract(tr *tar.Reader, h *tar.Header, path string) (File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return File{}, err
	}
	mode := os.FileMode(h.Mode).Perm() | 0o600
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return File{}, err
	}
	h256 := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h256), tr)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("%w: %s: %v", ErrBadArchive, h.Name, err)
	}
	return File{Path: h.Name, Size: n, SHA256: hex.EncodeToString(h256.Sum(nil))}, nil
}

// checkStaged checks the staged database against the manifest (schema versions, every
// table's rows) and verifies the staged audit trail.
func checkStaged(ctx context.Context, m *Manifest, dbPath, auditDir string) error {
	db, err := openReadOnly(dbPath)
	if err != nil {
		return fmt.Errorf("%w: database: %v", ErrBadArchive, err)
	}
	defer db.Close()
	schemas, err := SchemaVersions(ctx, db)
	if err != nil {
		return fmt.Errorf("%w: database: %v", ErrBadArchive, err)
	}
	for c, v := range schemas {
		if m.Schemas[c] != v {
			return fmt.Errorf("%w: database has %s schema %d, the manifest says %d", ErrBadArchive, c, v, m.Schemas[c])
		}
	}
	tables, err := TableDigests(ctx, db)
	if err != nil {
		return fmt.Errorf("%w: database: %v", ErrBadArchive, err)
	}
	if err := sameTables(m.Tables, tables); err != nil {
		return fmt.Errorf("%w: %v", ErrBadArchive, err)
	}
	rep, err := audit.Verify(ctx, db, auditDir, audit.VerifyOptions{})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAuditChain, err)
	}
	if !rep.OK {
		return fmt.Errorf("%w: %s", ErrAuditChain, rep)
	}
	return nil
}

// sameTables compares the tables the manifest lists with those found.
func sameTables(want, got []Table) error {
	have := map[string]Table{}
	for _, t := range got {
		have[t.Name] = t
	}
	for _, w := range want {
		g, ok := have[w.Name]
		if !ok {
			return fmt.Errorf("table %s is in the manifest but not in the database", w.Name)
		}
		if g != w {
			return fmt.Errorf("table %s: %d rows (sha256 %.12s…), the manifest says %d rows (sha256 %.12s…)", w.Name, g.Rows, g.SHA256, w.Rows, w.SHA256)
		}
		delete(have, w.Name)
	}
	for n := range have {
		return fmt.Errorf("table %s is in the database but not in the manifest", n)
	}
	return nil
}

// recordRestore opens the restored trail and records the restore.
func recordRestore(ctx context.Context, state, auditDir string, m *Manifest, opts RestoreOptions) error {
	db, err := store.Open(ctx, filepath.Join(state, "patchgate.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	l, err := audit.Open(ctx, db, audit.Options{Dir: auditDir, Clock: opts.Clock})
	if err != nil {
		return err
	}
	if p := l.Problem(); p != nil {
		l.Close()
		return p
	}
	err = l.Record(ctx, audit.Entry{Actor: opts.Actor, Action: "appliance.restore", Object: "state",
		Details: map[string]string{"archive": filepath.Base(opts.Archive), "created_at": m.CreatedAt.Format(time.RFC3339),
			"appliance_version": m.ApplianceVersion, "records": fmt.Sprint(m.AuditRecords)}})
	return errors.Join(err, l.Close())
}

func hasPrefix(m *Manifest, prefix string) bool {
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, prefix) {
			return true
		}
	}
	return false
}

// isEmptyDir reports whether dir is missing or empty.
func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err == io.EOF || (err == nil && len(names) == 0) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", dir, err)
	}
	return false, nil
}

// moveDir moves src to dst, which must be empty or missing unless force (then it is
// moved aside to dst.pre-restore).
func moveDir(src, dst string, force bool) error {
	empty, err := isEmptyDir(dst)
	if err != nil {
		return err
	}
	if !empty {
		if !force {
			return fmt.Errorf("%w: %s", ErrNotEmpty, dst)
		}
		if err := os.Rename(dst, dst+".pre-restore"); err != nil {
			return err
		}
	} else if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	return os.Rename(src, dst)
}

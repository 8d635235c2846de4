package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/patchgate/patchgate/appliance/audit"
)

// Sources name the appliance's state on disk and its live database.
type Sources struct {
	// DB is the live database; its snapshot is taken with VACUUM INTO.
	DB *sql.DB
	// DBFile is the database file inside StateDir; it (and its -wal, -shm files) is
	// replaced in the archive by the snapshot.
	DBFile string
	// StateDir is walked whole, less what the other fields say to skip.
	StateDir string
	// ConfigFile is archived as config/<name>; empty: none.
	ConfigFile string
	// AuditDir is the audit trail's directory (inside StateDir or not); its audit.log and
	// checkpoints.log are cut to the records in the snapshot, so the copies agree.
	AuditDir string
	// CacheDir's objects are not archived, only counted.
	CacheDir string
	// WorkDir takes the snapshot and the archive before it goes to the targets; it is
	// skipped in the walk.
	WorkDir string
	// Skip are further paths not archived (a local target inside the state directory).
	Skip []string
}

// Meta is what the manifest says besides the files.
type Meta struct {
	Version string
	Now     time.Time
	Pinned  []Pin
}

// Write writes an encrypted archive of src to w: gzip'd tar, encrypted to recipients,
// manifest.json as the last member. It returns the manifest. On error w holds a partial
// archive that must be thrown away.
func Write(ctx context.Context, w io.Writer, src Sources, meta Meta, recipients []age.Recipient) (*Manifest, error) {
	if len(recipients) == 0 {
		return nil, errorf("no recipients")
	}
	if err := os.MkdirAll(src.WorkDir, 0o700); err != nil {
		return nil, errorf("work dir: %w", err)
	}
	snap, err := os.CreateTemp(src.WorkDir, "snapshot-*.db")
	if err != nil {
		return nil, errorf("snapshot: %w", err)
	}
	snapPath := snap.Name()
	snap.Close()
	os.Remove(snapPath) // VACUUM INTO wants to create the file itself
	defer os.Remove(snapPath)
	if _, err := src.DB.ExecContext(ctx, `VACUUM INTO ?`, snapPath); err != nil {
		return nil, errorf("snapshot of the database: %w", err)
	}
	m := &Manifest{Format: Format, ApplianceVersion: meta.Version, CreatedAt: meta.Now.UTC(), Pinned: meta.Pinned}
	if err := describeSnapshot(ctx, snapPath, m); err != nil {
		return nil, errorf("snapshot: %w", err)
	}

	aw, err := age.Encrypt(w, recipients...)
	if err != nil {
		return nil, errorf("encrypt: %w", err)
	}
	gz := gzip.NewWriter(aw)
	a := &archiver{tw: tar.NewWriter(gz), m: m, now: meta.Now}
	if err := a.file(prefixState+"patchgate.db", snapPath, -1); err != nil {
		return nil, err
	}
	if err := a.walk(ctx, src, src.StateDir, prefixState); err != nil {
		return nil, err
	}
	if src.AuditDir != "" && !within(src.AuditDir, src.StateDir) {
		if err := a.walk(ctx, src, src.AuditDir, prefixAudit); err != nil {
			return nil, err
		}
	}
	if src.ConfigFile != "" {
		if err := a.file(prefixConfig+filepath.Base(src.ConfigFile), src.ConfigFile, -1); err != nil {
			return nil, err
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, errorf("manifest: %w", err)
	}
	if err := a.header(ManifestName, int64(len(mb)), 0o600); err != nil {
		return nil, err
	}
	if _, err := a.tw.Write(mb); err != nil {
		return nil, errorf("manifest: %w", err)
	}
	for _, c := range []io.Closer{a.tw, gz, aw} {
		if err := c.Close(); err != nil {
			return nil, errorf("finish archive: %w", err)
		}
	}
	return m, nil
}

// describeSnapshot fills the manifest's schema versions, table digests and audit size
// from the snapshot.
func describeSnapshot(ctx context.Context, path string, m *Manifest) error {
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	if m.Schemas, err = SchemaVersions(ctx, db); err != nil {
		return err
	}
	if m.Tables, err = TableDigests(ctx, db); err != nil {
		return err
	}
	return db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_records`).Scan(&m.AuditRecords)
}

// openReadOnly opens a database file that nothing else writes (a snapshot or a staged
// copy) without touching it.
func openReadOnly(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// SchemaVersions reads appliance/store's schema_versions: component -> version.
func SchemaVersions(ctx context.Context, db *sql.DB) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT component, version FROM schema_versions`)
	if err != nil {
		return nil, fmt.Errorf("schema versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var c string
		var v int
		if err := rows.Scan(&c, &v); err != nil {
			return nil, fmt.Errorf("schema versions: %w", err)
		}
		out[c] = v
	}
	return out, rows.Err()
}

// errVanished is a file that was listed but gone when opened: nothing was written for it.
var errVanished = errors.New("no such file (it vanished)")

type archiver struct {
	tw  *tar.Writer
	m   *Manifest
	now time.Time
}

func (a *archiver) header(name string, size int64, mode fs.FileMode) error {
	err := a.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: int64(mode.Perm()), ModTime: a.now.UTC(),
		Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	if err != nil {
		return errorf("archive %s: %w", name, err)
	}
	return nil
}

// file archives the first limit bytes of path as name (limit < 0: the whole file as it
// is when opened), hashing it into the manifest.
func (a *archiver) file(name, path string, limit int64) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return errorf("archive %s: %w", path, errVanished)
	}
	if err != nil {
		return errorf("archive %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errorf("archive %s: %w", path, err)
	}
	size := st.Size()
	if limit >= 0 && limit < size {
		size = limit
	}
	return a.copy(name, f, size, st.Mode())
}

func (a *archiver) copy(name string, r io.Reader, size int64, mode fs.FileMode) error {
	if err := a.header(name, size, mode); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(a.tw, h), r, size); err != nil {
		return errorf("archive %s: %w", name, err)
	}
	a.m.Files = append(a.m.Files, File{Path: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// walk archives every regular file under dir as prefix+relative path, less the
// database, the cache's objects, the work directory and src.Skip.
func (a *archiver) walk(ctx context.Context, src Sources, dir, prefix string) error {
	skip := append([]string{src.WorkDir}, src.Skip...)
	var cacheObjects []string
	if src.CacheDir != "" {
		cacheObjects = []string{filepath.Join(src.CacheDir, "objects"), filepath.Join(src.CacheDir, "tmp")}
		a.countCache(cacheObjects[0])
	}
	skip = append(skip, cacheObjects...)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil // removed while we walked (a temporary file renamed away)
		}
		if err != nil {
			return errorf("archive %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, s := range skip {
			if s != "" && within(p, s) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		if !d.Type().IsRegular() {
			return nil // directories are made on restore; sockets, links and devices are not state
		}
		base := filepath.Base(p)
		if src.DBFile != "" && (p == src.DBFile || strings.HasPrefix(p, src.DBFile+"-")) || strings.HasPrefix(base, ".write-test-") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return errorf("archive %s: %w", p, err)
		}
		name := prefix + filepath.ToSlash(rel)
		if src.AuditDir != "" && filepath.Dir(p) == filepath.Clean(src.AuditDir) {
			switch base {
			case audit.RecordsFile:
				n, err := lineOffset(p, a.m.AuditRecords)
				if err != nil {
					return errorf("archive %s: %w", p, err)
				}
				return a.file(name, p, n)
			case audit.CheckpointsFile:
				b, err := checkpointsUpTo(p, a.m.AuditRecords)
				if err != nil {
					return errorf("archive %s: %w", p, err)
				}
				return a.copy(name, bytes.NewReader(b), int64(len(b)), 0o640)
			}
		}
		if err := a.file(name, p, -1); err != nil && !errors.Is(err, errVanished) {
			return err
		}
		return nil
	})
}

func (a *archiver) countCache(objects string) {
	if a.m.CacheObjects > 0 {
		return
	}
	_ = filepath.WalkDir(objects, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				a.m.CacheObjects++
				a.m.CacheBytes += info.Size()
			}
		}
		return nil
	})
}

// lineOffset is the byte offset just after the n-th line of path: the audit file holds
// one record a line, and the snapshot has n of them (a record written to the file
// after the snapshot is not in it, nor in the archive).
func lineOffset(path string, n uint64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var off int64
	for i := uint64(0); i < n; i++ {
		line, err := br.ReadBytes('\n')
		off += int64(len(line))
		if err != nil {
			return 0, fmt.Errorf("has fewer than the %d records of the database snapshot: %w", n, err)
		}
	}
	return off, nil
}

// checkpointsUpTo returns, byte for byte, the lines of the checkpoints file covering at
// most n records.
func checkpointsUpTo(path string, n uint64) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []byte
	for line := range bytes.Lines(b) {
		var cp struct {
			Size uint64 `json:"size"`
		}
		if err := json.Unmarshal(line, &cp); err != nil {
			return nil, fmt.Errorf("not a checkpoint: %.40q: %v", line, err)
		}
		if cp.Size <= n {
			out = append(out, line...)
		}
	}
	return out, nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	p, dir = filepath.Clean(p), filepath.Clean(dir)
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

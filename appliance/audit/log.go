package audit

import (
	"bufio"
	"context"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/defaults"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// File names inside the audit directory.
const (
	RecordsFile     = "audit.log"
	CheckpointsFile = "checkpoints.log"
	PrivateKeyFile  = "checkpoint.key"
	PublicKeyFile   = "checkpoint.pub"
)

// Options configure Open.
type Options struct {
	// Dir holds the audit file, the checkpoints and the checkpoint signing key.
	Dir string
	// CheckpointEvery is how often (at most) a signed checkpoint is made while records
	// are written; one is also made by Close. Zero means every hour.
	CheckpointEvery time.Duration
	Clock           clock.Clock
	Logger          *slog.Logger
	Registerer      prometheus.Registerer // nil: metrics are not registered
}

// Log is the audit trail. It is safe for concurrent use: writes are serialised. Close it
// once, after the last write.
type Log struct {
	db    *store.DB
	dir   string
	every time.Duration
	clock clock.Clock
	log   *slog.Logger
	key   signer
	m     *metrics

	mu       sync.Mutex
	f        *os.File
	size     int64 // bytes of the audit file
	seq      uint64
	last     string // hash of record seq
	lastTime time.Time
	tree     *treeState
	lastCP   Checkpoint
	broken   error // set when the trail cannot be trusted; every write then fails

	// Test hooks simulating a crash at the two dangerous moments of a write.
	hookBeforeWrite func() // the action is done (in its transaction), the record not yet written
	hookAfterFile   func() // the record is in the file, the transaction not yet committed
}

// ErrBroken wraps the reason the trail refuses writes.
var ErrBroken = errors.New("audit trail is not usable")

// Open opens (creating when needed) the audit trail: it migrates the audit tables, loads
// or makes the checkpoint key, reads the audit file to rebuild the chain state and
// reconciles it with the database. A record that reached the file but whose transaction
// never committed (a crash in between) is copied into the database and followed by an
// audit.recovered record saying so. A file and database that disagree otherwise leave
// the Log open but refusing writes (Problem says why), so that no action goes
// unrecorded.
func Open(ctx context.Context, db *store.DB, opts Options) (*Log, error) {
	if err := db.MigrateFS(ctx, "audit", migrationFiles, "migrations"); err != nil {
		return nil, err
	}
	defaults.Fill(&opts.Clock, &opts.Logger, nil)
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = time.Hour
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", opts.Dir, err)
	}
	key, err := loadOrMakeKey(opts.Dir)
	if err != nil {
		return nil, err
	}
	l := &Log{db: db, dir: opts.Dir, every: opts.CheckpointEvery, clock: opts.Clock, log: opts.Logger,
		key: key, tree: newTree(), last: genesis}
	if l.m, err = newMetrics(opts.Registerer, l); err != nil {
		return nil, fmt.Errorf("audit: metrics: %w", err)
	}
	path := filepath.Join(opts.Dir, RecordsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l.f = f
	if err := l.load(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// load reads the file's chain and reconciles it with the database.
func (l *Log) load(ctx context.Context) error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("audit: read %s: %w", l.f.Name(), err)
	}
	var fileRecs []Record // only the records the database lacks are kept
	var dbSeq uint64
	var dbHash string
	err := l.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&dbSeq, &dbHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("audit: read database: %w", err)
	}
	sc := bufio.NewScanner(l.f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.size += int64(len(sc.Bytes())) + 1
		if l.broken != nil {
			continue
		}
		r, err := parseLine(sc.Bytes())
		switch {
		case err != nil:
			l.broken = fmt.Errorf("%w: %s: record %d: %v", ErrBroken, l.f.Name(), l.seq+1, err)
		case r.Seq != l.seq+1 || r.Prev != l.last || r.ComputeHash() != r.Hash:
			l.broken = fmt.Errorf("%w: %s: record %d does not chain (run patchgate audit verify)", ErrBroken, l.f.Name(), l.seq+1)
		default:
			l.advance(r)
			if r.Seq == dbSeq && r.Hash != dbHash {
				l.broken = fmt.Errorf("%w: record %d differs between %s and the database (run patchgate audit verify)", ErrBroken, r.Seq, l.f.Name())
			}
			if r.Seq > dbSeq {
				fileRecs = append(fileRecs, r)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit: read %s: %w", l.f.Name(), err)
	}
	if l.broken == nil && l.seq < dbSeq {
		l.broken = fmt.Errorf("%w: %s ends after record %d but the database has %d records: the file was truncated (run patchgate audit verify)",
			ErrBroken, l.f.Name(), l.seq, dbSeq)
	}
	if err := l.loadCheckpoint(ctx); err != nil {
		return err
	}
	if l.broken != nil {
		l.log.Error("audit trail refuses writes until repaired", "err", l.broken)
		return nil
	}
	// Records in the file but not in the database: written, then the process died before
	// the transaction committed. Keep them (the file is append-only) and say so.
	for _, r := range fileRecs {
		if err := l.insert(ctx, l.db, r); err != nil {
			return fmt.Errorf("audit: recover record %d: %w", r.Seq, err)
		}
		l.log.Warn("audit record was written but its action may not have committed", "seq", r.Seq, "action", r.Action)
		if _, err := l.write(ctx, Entry{Actor: "system:audit", Action: "audit.recovered", Object: fmt.Sprintf("record %d", r.Seq),
			Details: map[string]string{"note": "written to the file but the transaction of the action did not commit before a stop; the action did not take effect", "action": r.Action}}, nil); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) loadCheckpoint(ctx context.Context) error {
	var cp Checkpoint
	var t string
	err := l.db.QueryRowContext(ctx, `SELECT size, time, root, last_hash, key_id, signature FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).
		Scan(&cp.Size, &t, &cp.Root, &cp.LastHash, &cp.KeyID, &cp.Signature)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: read checkpoints: %w", err)
	}
	cp.Time, _ = time.Parse(timeFormat, t)
	l.lastCP = cp
	if l.broken == nil && cp.Size > l.seq {
		l.broken = fmt.Errorf("%w: checkpoint covers %d records but the trail has %d: records were removed (run patchgate audit verify)", ErrBroken, cp.Size, l.seq)
	}
	return nil
}

func (l *Log) advance(r Record) {
	l.seq, l.last, l.lastTime = r.Seq, r.Hash, r.Time
	b, _ := hex.DecodeString(r.Hash)
	l.tree.append(b)
}

// Record appends e to the trail, synced to the file and committed to the database
// before it returns. Subsystems call it after a change they made themselves; an error
// means nothing was recorded.
func (l *Log) Record(ctx context.Context, e Entry) error {
	_, err := l.Apply(ctx, e, nil)
	return err
}

// Apply does an action and records it atomically: fn makes the change inside tx (in the
// appliance database), then the record is added to the same transaction, written and
// synced to the audit file, and only then is the transaction committed. If fn fails,
// nothing is recorded; if recording fails (or the process dies before the commit), the
// action is rolled back: an action is never acknowledged without its record. fn may be
// nil. Writes are serialised: fn should be quick.
func (l *Log) Apply(ctx context.Context, e Entry, fn func(*sql.Tx) error) (Record, error) {
	if err := e.Check(); err != nil {
		return Record{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.write(ctx, e, fn)
}

func (l *Log) write(ctx context.Context, e Entry, fn func(*sql.Tx) error) (Record, error) {
	if l.broken != nil {
		l.m.failures.Inc()
		return Record{}, fmt.Errorf("audit: %s: %w", e.Action, l.broken)
	}
	start := time.Now()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return Record{}, fmt.Errorf("audit: %s: %w", e.Action, err)
	}
	defer tx.Rollback() // no-op after Commit
	if fn != nil {
		if err := fn(tx); err != nil {
			return Record{}, err
		}
	}
	if l.hookBeforeWrite != nil {
		l.hookBeforeWrite()
	}
	r := Record{Seq: l.seq + 1, Time: l.clock.Now().UTC(), Entry: e, Prev: l.last}
	r.Hash = r.ComputeHash()
	if err := l.insert(ctx, tx, r); err != nil {
		l.m.failures.Inc()
		return Record{}, fmt.Errorf("audit: %s: store record: %w", e.Action, err)
	}
	if err := l.appendFile(r.line()); err != nil {
		l.m.failures.Inc()
		return Record{}, fmt.Errorf("audit: %s: %w", e.Action, err)
	}
	if l.hookAfterFile != nil {
		l.hookAfterFile()
	}
	if err := tx.Commit(); err != nil {
		// The file has a record whose action did not happen. Keep both copies equal and
		// say so, or stop accepting writes.
		l.m.failures.Inc()
		l.advance(r)
		if ierr := l.insert(ctx, l.db, r); ierr != nil {
			l.broken = fmt.Errorf("%w: record %d is in the file but not in the database: %v", ErrBroken, r.Seq, ierr)
			return Record{}, fmt.Errorf("audit: %s: commit: %w", e.Action, err)
		}
		l.write(ctx, Entry{Actor: "system:audit", Action: "audit.not_committed", Object: fmt.Sprintf("record %d", r.Seq),
			Details: map[string]string{"error": err.Error()}}, nil)
		return Record{}, fmt.Errorf("audit: %s: commit: %w", e.Action, err)
	}
	l.advance(r)
	l.m.records.Inc()
	l.m.latency.Observe(time.Since(start).Seconds())
	if r.Time.Sub(l.lastCP.Time) >= l.every {
		if _, err := l.checkpoint(ctx); err != nil {
			l.log.Error("audit checkpoint failed", "err", err)
		}
	}
	return r, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (l *Log) insert(ctx context.Context, x execer, r Record) error {
	details := ""
	if len(r.Details) > 0 {
		b, _ := json.Marshal(r.Details)
		details = string(b)
	}
	_, err := x.ExecContext(ctx, `INSERT INTO audit_records(seq, time, actor, role, auth_method, source, action, object, before, after, details, prev, hash)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)`, r.Seq, r.Time.UTC().Format(timeFormat), r.Actor, r.Role, r.AuthMethod, r.Source,
		r.Action, r.Object, r.Before, r.After, details, r.Prev, r.Hash)
	return err
}

// appendFile writes one line and syncs it. A failed write is cut off again so that the
// file never keeps half a record.
func (l *Log) appendFile(b []byte) error {
	n, err := l.f.Write(b)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		if n > 0 {
			l.f.Truncate(l.size)
		}
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	l.size += int64(n)
	return nil
}

// Checkpoint signs the current state of the trail now (if records were added since the
// last checkpoint) and returns the newest checkpoint.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkpoint(ctx)
}

func (l *Log) checkpoint(ctx context.Context) (Checkpoint, error) {
	if l.seq == 0 || l.seq == l.lastCP.Size || l.broken != nil {
		return l.lastCP, nil
	}
	cp := Checkpoint{Size: l.seq, Time: l.clock.Now().UTC(), Root: hex.EncodeToString(l.tree.root()), LastHash: l.last}
	l.key.sign(&cp)
	_, err := l.db.ExecContext(ctx, `INSERT INTO audit_checkpoints(size, time, root, last_hash, key_id, signature) VALUES(?,?,?,?,?,?)`,
		cp.Size, cp.Time.Format(timeFormat), cp.Root, cp.LastHash, cp.KeyID, cp.Signature)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if err := appendSynced(filepath.Join(l.dir, CheckpointsFile), cp.line()); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	l.lastCP = cp
	l.m.checkpoints.Inc()
	return cp, nil
}

func appendSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Close makes a last checkpoint and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	_, cerr := l.checkpoint(context.Background())
	err := l.f.Close()
	l.f = nil
	l.broken = fmt.Errorf("%w: closed", ErrBroken)
	return errors.Join(cerr, err)
}

// Problem returns why the trail refuses writes, or nil.
func (l *Log) Problem() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	return l.broken
}

// Dir is the audit directory.
func (l *Log) Dir() string { return l.dir }

// Stats is the trail's state for the status page.
type Stats struct {
	Dir            string    `json:"dir"`
	File           string    `json:"file"`
	FileBytes      int64     `json:"file_bytes"`
	Records        uint64    `json:"records"`
	LastRecord     time.Time `json:"last_record"`
	CheckpointSize uint64    `json:"checkpoint_size"`
	CheckpointTime time.Time `json:"checkpoint_time"`
	PublicKey      string    `json:"public_key"`
	Retention      string    `json:"retention"`
	Problem        string    `json:"problem,omitempty"`
}

// Stats returns the trail's current state.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := Stats{Dir: l.dir, File: filepath.Join(l.dir, RecordsFile), FileBytes: l.size, Records: l.seq, LastRecord: l.lastTime,
		CheckpointSize: l.lastCP.Size, CheckpointTime: l.lastCP.Time, PublicKey: filepath.Join(l.dir, PublicKeyFile),
		Retention: "six years; nothing is deleted before"}
	if l.broken != nil && l.f != nil {
		st.Problem = l.broken.Error()
	}
	return st
}

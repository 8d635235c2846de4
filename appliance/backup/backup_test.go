package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/go-cmp/cmp"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fixture is a small appliance state: a database with audit records (one checkpoint),
// TUF keys, TLS files, cached objects and a config file.
type fixture struct {
	src   Sources
	db    *store.DB
	log   *audit.Log
	id    *age.X25519Identity
	clock *clock.Fake
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	state := filepath.Join(root, "state")
	db, err := store.Open(ctx, filepath.Join(state, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := clock.NewFake(t0)
	auditDir := filepath.Join(state, "audit")
	l, err := audit.Open(ctx, db, audit.Options{Dir: auditDir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := l.Record(ctx, audit.Entry{Actor: "anna", Action: "user.create", Object: "user/u" + itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close() // a checkpoint
	if l, err = audit.Open(ctx, db, audit.Options{Dir: auditDir, Clock: clk}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.Record(ctx, audit.Entry{Actor: "rita", Action: "rollout.submit", Object: "rollout/1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO widgets(name, blob) VALUES ('a', x'00ff'), ('b', NULL)`); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"tuf-demo/keys/timestamp.json": `{"key":"secret"}`,
		"tuf/demo/root.json":           `{"signed":{}}`,
		"tls/admin.pem":                "CERT",
		"cache/objects/ab/abcdef":      "cached bytes",
		"cache/index.json":             "{}",
		"backup/tmp/leftover":          "x",
	}
	for p, c := range files {
		write(t, filepath.Join(state, p), c)
	}
	cfg := filepath.Join(root, "patchgate.yaml")
	write(t, cfg, "state:\n  dir: "+state+"\n")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		src: Sources{DB: db.DB, DBFile: db.Path(), StateDir: state, ConfigFile: cfg, AuditDir: auditDir,
			CacheDir: filepath.Join(state, "cache"), WorkDir: filepath.Join(state, "backup", "tmp")},
		db: db, log: l, id: id, clock: clk,
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) archive(t *testing.T) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Write(context.Background(), &buf, f.src, Meta{Version: "v1.2.3", Now: f.clock.Now(),
		Pinned: []Pin{{Repo: "demo", Path: "hello.txt"}}}, []age.Recipient{f.id.Recipient()})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes(), m
}

func (f *fixture) known(t *testing.T) map[string]int {
	t.Helper()
	k, err := SchemaVersions(context.Background(), f.db.DB)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b, m := f.archive(t)

	var paths []string
	for _, fl := range m.Files {
		paths = append(paths, fl.Path)
	}
	want := []string{"state/patchgate.db", "state/audit/audit.log", "state/audit/checkpoint.key", "state/audit/checkpoint.pub",
		"state/audit/checkpoints.log", "state/cache/index.json", "state/tls/admin.pem", "state/tuf/demo/root.json",
		"state/tuf-demo/keys/timestamp.json", "config/patchgate.yaml"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("archived files (-want +got):\n%s", diff)
	}
	if m.AuditRecords != 6 || m.CacheObjects != 1 || m.Schemas["audit"] < 1 || m.ApplianceVersion != "v1.2.3" || len(m.Pinned) != 1 {
		t.Errorf("manifest: records %d, cache objects %d, schemas %v, version %q, pinned %v", m.AuditRecords, m.CacheObjects, m.Schemas, m.ApplianceVersion, m.Pinned)
	}

	dst := filepath.Join(t.TempDir(), "fresh", "state")
	got, err := Restore(ctx, bytes.NewReader(b), []age.Identity{f.id}, RestoreOptions{StateDir: dst, Known: f.known(t), Clock: f.clock, Archive: "a.tar.gz.age"})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got.CreatedAt != t0 {
		t.Errorf("restored manifest created at %v, want %v", got.CreatedAt, t0)
	}
	for _, p := range []string{"tuf-demo/keys/timestamp.json", "tls/admin.pem", "restored/patchgate.yaml"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err != nil {
			t.Errorf("restored state lacks %s: %v", p, err)
		}
	}
	for _, p := range []string{"cache/objects/ab/abcdef", "backup/tmp/leftover"} {
		if _, err := os.Stat(filepath.Join(dst, p)); err == nil {
			t.Errorf("restored state has %s, which is not backed up", p)
		}
	}
	rdb, err := store.Open(ctx, filepath.Join(dst, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for _, table := range []string{"widgets", "schema_versions"} {
		a, _ := TableRows(ctx, f.db.DB, table)
		b, err := TableRows(ctx, rdb.DB, table)
		if err != nil || !slices.Equal(a, b) {
			t.Errorf("table %s differs after restore (%v):\n%s", table, err, cmp.Diff(a, b))
		}
	}
	rep, err := audit.Verify(ctx, rdb.DB, filepath.Join(dst, "audit"), audit.VerifyOptions{})
	if err != nil || !rep.OK || rep.Records != 7 {
		t.Fatalf("audit verify of the restored trail: %v %v, want ok with 7 records (6 + the restore)", rep, err)
	}
	recs, _ := TableRows(ctx, rdb.DB, "audit_records")
	if last := recs[len(recs)-1]; !strings.Contains(last, `"appliance.restore"`) {
		t.Errorf("last restored record is %s, want appliance.restore", last)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".state.restore-*")); len(left) > 0 {
		t.Errorf("staging left behind: %v", left)
	}
}

// TestRestoreRefuses feeds Restore bad archives and bad situations: each is refused with
// an error naming the cause, and the target state directory is left as it was.
func TestRestoreRefuses(t *testing.T) {
	f := newFixture(t)
	good, _ := f.archive(t)
	other, _ := age.GenerateX25519Identity()
	known := f.known(t)
	older := map[string]int{}
	for c, v := range known {
		older[c] = v
	}
	older["audit"]--

	tests := []struct {
		name     string
		archive  func() []byte
		ids      []age.Identity
		known    map[string]int
		occupied bool
		want     error
		says     string
	}{
		{name: "truncated", archive: func() []byte { return good[:len(good)*2/3] }, want: ErrBadArchive, says: "decrypt"},
		{name: "truncated at the last byte", archive: func() []byte { return good[:len(good)-1] }, want: ErrBadArchive},
		{name: "tampered payload", archive: func() []byte {
			b := slices.Clone(good)
			b[len(b)/2] ^= 0x40
			return b
		}, want: ErrBadArchive},
		{name: "not an age file", archive: func() []byte { return []byte("hello, this is not a backup\n") }, want: ErrBadArchive},
		{name: "empty", archive: func() []byte { return nil }, want: ErrBadArchive},
		{name: "wrong identity", archive: func() []byte { return good }, ids: []age.Identity{other}, want: ErrIdentity, says: "other recipients"},
		{name: "newer schema", archive: func() []byte { return good }, known: older, want: ErrNewerSchema, says: "audit"},
		{name: "unknown component", archive: func() []byte { return good }, known: map[string]int{"store": 1}, want: ErrNewerSchema},
		{name: "state dir not empty", archive: func() []byte { return good }, occupied: true, want: ErrNotEmpty, says: "--force"},
		{name: "unlisted member", archive: func() []byte { return rewrap(t, f, good, extraMember) }, want: ErrBadArchive, says: "not in the manifest"},
		{name: "member changed", archive: func() []byte { return rewrap(t, f, good, changeMember) }, want: ErrBadArchive, says: "the manifest says"},
		{name: "audit record removed", archive: func() []byte { return rewrap(t, f, good, dropAuditLine) }, want: ErrAuditChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "state")
			if tc.occupied {
				write(t, filepath.Join(dst, "keep.txt"), "mine")
			}
			ids := tc.ids
			if ids == nil {
				ids = []age.Identity{f.id}
			}
			k := tc.known
			if k == nil {
				k = known
			}
			_, err := Restore(context.Background(), bytes.NewReader(tc.archive()), ids, RestoreOptions{StateDir: dst, Known: k, Clock: f.clock})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "restore: ") {
				t.Fatalf("Restore = %v, want %v saying %q", err, tc.want, tc.says)
			}
			entries, _ := os.ReadDir(parent)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			wantNames := []string(nil)
			if tc.occupied {
				wantNames = []string{"state"}
				if b, _ := os.ReadFile(filepath.Join(dst, "keep.txt")); string(b) != "mine" {
					t.Error("the occupied state directory was changed")
				}
			}
			if diff := cmp.Diff(wantNames, names); diff != "" {
				t.Errorf("something was written beside the state (-want +got):\n%s", diff)
			}
		})
	}
}

// rewrap decrypts good, lets change edit its members, and encrypts it again to the
// fixture's identity: what someone holding only the public key could make.
func rewrap(t *testing.T, f *fixture, good []byte, change func(t *testing.T, dir string)) []byte {
	t.Helper()
	dir := t.TempDir()
	m, err := unpack(context.Background(), bytes.NewReader(good), []age.Identity{f.id}, dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	change(t, dir)
	var buf bytes.Buffer
	aw, _ := age.Encrypt(&buf, f.id.Recipient())
	if err := packDir(aw, dir, m); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	return buf.Bytes()
}

func extraMember(t *testing.T, dir string) {
	write(t, filepath.Join(dir, "state", "evil.sh"), "rm -rf /")
}
func changeMember(t *testing.T, dir string) {
	write(t, filepath.Join(dir, "state", "tls", "admin.pem"), "OTHER CERT")
}
func dropAuditLine(t *testing.T, dir string) {
	p := filepath.Join(dir, "state", "audit", "audit.log")
	b, _ := os.ReadFile(p)
	lines := bytes.SplitAfter(b, []byte("\n"))
	write(t, p, string(bytes.Join(append(lines[:2], lines[3:]...), nil)))
}

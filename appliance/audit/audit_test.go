package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/clock"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fixture struct {
	db    *store.DB
	dir   string
	clock *clock.Fake
	log   *Log
}

func openFixture(t *testing.T, dir string) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := clock.NewFake(t0)
	l, err := Open(ctx, db, Options{Dir: filepath.Join(dir, "audit"), Clock: clk, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return &fixture{db: db, dir: filepath.Join(dir, "audit"), clock: clk, log: l}
}

func (fx *fixture) write(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		fx.clock.Advance(time.Minute)
		err := fx.log.Record(context.Background(), Entry{Actor: "alice", Role: "deployer", AuthMethod: "password+totp",
			Source: "127.0.0.1:5000", Action: "rollout.start", Object: fmt.Sprintf("rollout/%d", i),
			Before: Digest("draft"), After: Digest("running"), Details: map[string]string{"i": fmt.Sprint(i)}})
		if err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func (fx *fixture) verify(t *testing.T) Report {
	t.Helper()
	rep, err := Verify(context.Background(), fx.db.DB, fx.dir, VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestChainVerifiesAndCheckpoints(t *testing.T) {
	fx := openFixture(t, t.TempDir())
	fx.write(t, 5)
	fx.clock.Advance(2 * time.Hour)
	fx.write(t, 3) // the first of these makes a checkpoint at size 6
	cp, err := fx.log.Checkpoint(context.Background())
	if err != nil || cp.Size != 8 {
		t.Fatalf("Checkpoint = %+v, %v; want size 8", cp, err)
	}
	rep := fx.verify(t)
	if !rep.OK || rep.Records != 8 || rep.Checkpoints != 3 {
		t.Fatalf("Verify = %+v, want ok with 8 records and 3 checkpoints (sizes 1, 6, 8)", rep)
	}
	st := fx.log.Stats()
	if st.Records != 8 || st.FileBytes == 0 || st.CheckpointSize != 8 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestTamperOneByteNamesTheRecord(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, fx *fixture)
		want   uint64
		reason string
	}{
		{"file byte", func(t *testing.T, fx *fixture) {
			path := filepath.Join(fx.dir, RecordsFile)
			b, _ := os.ReadFile(path)
			lines := bytes.SplitAfter(b, []byte("\n"))
			off := len(bytes.Join(lines[:3], nil)) + bytes.Index(lines[3], []byte("rollout/3")) + len("rollout/")
			b[off] = '7' // record 4's object: rollout/3 -> rollout/7
			os.WriteFile(path, b, 0o600)
		}, 4, "content does not match its hash"},
		{"database row", func(t *testing.T, fx *fixture) {
			mustExec(t, fx.db.DB, `DROP TRIGGER audit_records_no_update`)
			mustExec(t, fx.db.DB, `UPDATE audit_records SET actor = 'mallory' WHERE seq = 2`)
		}, 2, "the database: content does not match"},
		{"rehashed file record", func(t *testing.T, fx *fixture) {
			// Change record 5 and fix its own hash: the next record's link breaks.
			path := filepath.Join(fx.dir, RecordsFile)
			b, _ := os.ReadFile(path)
			lines := bytes.SplitAfter(b, []byte("\n"))
			r, _ := parseLine(bytes.TrimSpace(lines[4]))
			r.Actor = "mallory"
			r.Hash = r.ComputeHash()
			lines[4] = r.line()
			os.WriteFile(path, bytes.Join(lines, nil), 0o600)
		}, 5, "differs between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := openFixture(t, t.TempDir())
			fx.write(t, 6)
			if rep := fx.verify(t); !rep.OK {
				t.Fatalf("before tampering: %v", rep)
			}
			tt.tamper(t, fx)
			rep := fx.verify(t)
			if rep.OK || rep.FirstBad != tt.want || !strings.Contains(rep.Problem, tt.reason) {
				t.Fatalf("Verify after tampering = %v, want record %d named with %q", rep, tt.want, tt.reason)
			}
		})
	}
}

func TestTruncationDetected(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		fx := openFixture(t, dir)
		fx.write(t, 5)
		fx.log.Close()
		path := filepath.Join(fx.dir, RecordsFile)
		b, _ := os.ReadFile(path)
		lines := bytes.SplitAfter(b, []byte("\n"))
		os.WriteFile(path, bytes.Join(lines[:3], nil), 0o600)
		rep := fx.verify(t)
		if rep.OK || rep.FirstBad != 4 || !strings.Contains(rep.Problem, "truncated") {
			t.Fatalf("Verify = %v, want record 4 missing from a truncated file", rep)
		}
		// Reopened, the trail refuses writes, so no action can go unrecorded.
		l, err := Open(context.Background(), fx.db, Options{Dir: fx.dir, Clock: fx.clock})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.Record(context.Background(), Entry{Actor: "a", Action: "x"}); !errors.Is(err, ErrBroken) {
			t.Fatalf("Record on a truncated trail = %v, want ErrBroken", err)
		}
		if l.Problem() == nil || !strings.Contains(l.Problem().Error(), "truncated") {
			t.Errorf("Problem = %v", l.Problem())
		}
	})
	t.Run("both copies, caught by a checkpoint", func(t *testing.T) {
		fx := openFixture(t, t.TempDir())
		fx.write(t, 5)
		if _, err := fx.log.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
		fx.log.Close()
		path := filepath.Join(fx.dir, RecordsFile)
		b, _ := os.ReadFile(path)
		lines := bytes.SplitAfter(b, []byte("\n"))
		os.WriteFile(path, bytes.Join(lines[:3], nil), 0o600)
		mustExec(t, fx.db.DB, `DROP TRIGGER audit_records_retention`)
		mustExec(t, fx.db.DB, `DELETE FROM audit_records WHERE seq > 3`)
		rep := fx.verify(t)
		if rep.OK || !strings.Contains(rep.Problem, "covers 5 records but the trail has only 3") {
			t.Fatalf("Verify = %v, want the checkpoint to expose the removal", rep)
		}
	})
}

func TestDatabaseRefusesChangeAndEarlyDeletion(t *testing.T) {
	fx := openFixture(t, t.TempDir())
	fx.write(t, 2)
	for _, q := range []string{
		`UPDATE audit_records SET actor = 'x' WHERE seq = 1`,
		`DELETE FROM audit_records WHERE seq = 1`,
	} {
		if _, err := fx.db.Exec(q); err == nil {
			t.Errorf("%s succeeded, want refused", q)
		}
	}
	// A record older than six years may go (retention ends), a younger one not.
	mustExec(t, fx.db.DB, `DROP TRIGGER audit_records_no_update`)
	mustExec(t, fx.db.DB, `UPDATE audit_records SET time = '2019-01-01T00:00:00.000000000Z' WHERE seq = 1`)
	if _, err := fx.db.Exec(`DELETE FROM audit_records WHERE seq = 1`); err != nil {
		t.Errorf("deleting a seven-year-old record: %v", err)
	}
}

func TestApplyIsAtomic(t *testing.T) {
	fx := openFixture(t, t.TempDir())
	ctx := context.Background()
	mustExec(t, fx.db.DB, `CREATE TABLE things (name TEXT)`)
	insert := func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO things VALUES ('a')`); return err }

	if _, err := fx.log.Apply(ctx, Entry{Actor: "alice", Action: "thing.create"}, insert); err != nil {
		t.Fatal(err)
	}
	// The audit file cannot be written: the action must not happen.
	fx.log.mu.Lock()
	good := fx.log.f
	ro, _ := os.Open(good.Name())
	fx.log.f = ro
	fx.log.mu.Unlock()
	if _, err := fx.log.Apply(ctx, Entry{Actor: "alice", Action: "thing.create"}, insert); err == nil {
		t.Fatal("Apply with an unwritable audit file succeeded")
	}
	fx.log.mu.Lock()
	fx.log.f = good
	fx.log.mu.Unlock()
	ro.Close()
	// The action fails: nothing is recorded.
	if _, err := fx.log.Apply(ctx, Entry{Actor: "alice", Action: "thing.create"}, func(*sql.Tx) error { return errors.New("no") }); err == nil {
		t.Fatal("Apply with a failing action succeeded")
	}
	var n int
	fx.db.QueryRow(`SELECT count(*) FROM things`).Scan(&n)
	if n != 1 {
		t.Errorf("things = %d, want 1 (only the recorded action)", n)
	}
	if rep := fx.verify(t); !rep.OK || rep.Records != 1 {
		t.Errorf("Verify = %v, want ok with 1 record", rep)
	}
}

func TestEntryCheck(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"ok", Entry{Actor: "a", Action: "b", Details: map[string]string{"asset": "rx-printer-2"}}, ""},
		{"no actor", Entry{Action: "b"}, "no actor"},
		{"no action", Entry{Actor: "a"}, "no action"},
		{"patient", Entry{Actor: "a", Action: "b", Details: map[string]string{"patient_name": "x"}}, "patient data"},
		{"dob", Entry{Actor: "a", Action: "b", Details: map[string]string{"DOB": "x"}}, "patient data"},
		{"long", Entry{Actor: strings.Repeat("a", 300), Action: "b"}, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Check()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestExport(t *testing.T) {
	fx := openFixture(t, t.TempDir())
	fx.write(t, 5) // at t0+1m ... t0+5m
	ctx := context.Background()
	var buf bytes.Buffer
	if err := Export(ctx, fx.db.DB, t0.Add(2*time.Minute), t0.Add(4*time.Minute), "json", &buf); err != nil {
		t.Fatal(err)
	}
	var recs []Record
	if err := json.Unmarshal(buf.Bytes(), &recs); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
		if r.ComputeHash() != r.Hash {
			t.Errorf("exported record %d does not hash to its hash", r.Seq)
		}
	}
	if diff := cmp.Diff([]uint64{2, 3}, seqs); diff != "" {
		t.Errorf("JSON export [t0+2m, t0+4m) seqs (-want +got):\n%s", diff)
	}
	buf.Reset()
	if err := Export(ctx, fx.db.DB, time.Time{}, time.Time{}, "csv", &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[0][0] != "seq" || rows[3][7] != "rollout/2" || rows[3][10] != `{"i":"2"}` {
		t.Errorf("CSV export = %q", rows)
	}
	if err := Export(ctx, fx.db.DB, time.Time{}, time.Time{}, "xml", &buf); err == nil {
		t.Error("export as xml succeeded")
	}
}

// The crash tests run this test binary again as a child that dies (os.Exit) at a chosen
// moment of a write, then check what the parent finds: a real process death, not a
// simulated one.
const crashEnv = "PATCHGATE_AUDIT_CRASH"

func TestCrashChild(t *testing.T) {
	mode := os.Getenv(crashEnv)
	if mode == "" {
		t.Skip("helper for TestCrashBetweenActionAndRecord")
	}
	dir := os.Getenv(crashEnv + "_DIR")
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(ctx, db, Options{Dir: filepath.Join(dir, "audit"), Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	die := func() { os.Exit(3) }
	switch mode {
	case "before-write":
		l.hookBeforeWrite = die
	case "after-file":
		l.hookAfterFile = die
	}
	l.Apply(ctx, Entry{Actor: "alice", Action: "thing.create", Object: "thing/b"}, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO things VALUES ('b')`)
		return err
	})
	t.Fatal("the child should have died")
}

func TestCrashBetweenActionAndRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	tests := []struct {
		mode        string
		wantRecords uint64
		wantLast    string
	}{
		{"before-write", 1, "thing.create"},
		{"after-file", 3, "audit.recovered"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			dir := t.TempDir()
			fx := openFixture(t, dir)
			mustExec(t, fx.db.DB, `CREATE TABLE things (name TEXT)`)
			ctx := context.Background()
			if _, err := fx.log.Apply(ctx, Entry{Actor: "alice", Action: "thing.create", Object: "thing/a"}, func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO things VALUES ('a')`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			fx.log.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
			cmd.Env = append(os.Environ(), crashEnv+"="+tt.mode, crashEnv+"_DIR="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("child: %v\n%s", err, out)
			}
			// The action the child was doing did not happen.
			var names []string
			rows, _ := fx.db.Query(`SELECT name FROM things ORDER BY name`)
			for rows.Next() {
				var s string
				rows.Scan(&s)
				names = append(names, s)
			}
			rows.Close()
			if diff := cmp.Diff([]string{"a"}, names); diff != "" {
				t.Errorf("things after the crash (-want +got):\n%s", diff)
			}
			l, err := Open(ctx, fx.db, Options{Dir: fx.dir, Clock: fx.clock})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if p := l.Problem(); p != nil {
				t.Fatalf("reopened trail has a problem: %v", p)
			}
			rep := fx.verify(t)
			if !rep.OK || rep.Records != tt.wantRecords {
				t.Fatalf("Verify after the crash = %v, want ok with %d records", rep, tt.wantRecords)
			}
			recs, _ := l.Records(ctx, Query{Newest: true, Limit: 1})
			if len(recs) != 1 || recs[0].Action != tt.wantLast {
				t.Errorf("last record = %+v, want %s", recs, tt.wantLast)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	// Invariant: parseLine never panics, and a line it accepts re-encodes to a line that
	// parses to the same record (the file format round-trips).
	r := Record{Seq: 1, Time: t0, Entry: Entry{Actor: "a", Action: "b", Details: map[string]string{"k": "v"}}, Prev: genesis}
	r.Hash = r.ComputeHash()
	f.Add(r.line())
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":1,"time":"x","actor":"a","action":"b","prev":"","hash":"","extra":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseLine(b)
		if err != nil {
			return
		}
		r2, err := parseLine(r.line())
		if err != nil {
			t.Fatalf("re-encoded line does not parse: %v", err)
		}
		if r.ComputeHash() != r2.ComputeHash() {
			t.Fatalf("round trip changed the record: %+v vs %+v", r, r2)
		}
	})
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// BenchmarkRecord measures one durable write: the file line with fsync and the database
// commit (synchronous=FULL).
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l, err := Open(ctx, db, Options{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := Entry{Actor: "alice", Role: "deployer", AuthMethod: "password+totp", Source: "10.20.0.5", Action: "rollout.pause",
		Object: "rollout/7", Details: map[string]string{"reason": "pilot printer failed"}}
	b.ResetTimer()
	for b.Loop() {
		if err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzReadCheckpoints(f *testing.F) {
	// Invariant: ReadCheckpoints never panics; what it accepts verifies or fails
	// VerifySignature with an error, never a panic.
	cp := Checkpoint{Size: 3, Time: t0, Root: strings.Repeat("ab", 32), LastHash: strings.Repeat("cd", 32), KeyID: "00", Signature: "AAAA"}
	f.Add(string(cp.line()))
	f.Add("{}\n{\"size\":1}\n")
	f.Add("not json")
	f.Add(`{"size":1,"extra":true}`)
	dir := f.TempDir()
	pub, _, _ := ed25519GenerateForTest()
	f.Fuzz(func(t *testing.T, s string) {
		path := filepath.Join(dir, "cp.log")
		os.WriteFile(path, []byte(s), 0o600)
		cps, err := ReadCheckpoints(path)
		if err != nil {
			return
		}
		for _, c := range cps {
			_ = c.VerifySignature(pub)
		}
	})
}

func ed25519GenerateForTest() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Report is the outcome of Verify. OK is true only when both copies of the chain are
// whole and equal and every checkpoint matches; otherwise FirstBad names the first
// record that is wrong (0 when the problem is not one record's) and Problem says what.
type Report struct {
	OK          bool   `json:"ok"`
	Records     uint64 `json:"records"`
	Checkpoints int    `json:"checkpoints"`
	FirstBad    uint64 `json:"first_bad,omitempty"`
	Problem     string `json:"problem,omitempty"`
}

func (r Report) String() string {
	if r.OK {
		return fmt.Sprintf("ok: %d records, %d checkpoints verified", r.Records, r.Checkpoints)
	}
	if r.FirstBad > 0 {
		return fmt.Sprintf("BAD: record %d: %s", r.FirstBad, r.Problem)
	}
	return "BAD: " + r.Problem
}

// VerifyOptions name the extra evidence Verify checks.
type VerifyOptions struct {
	// ExtraCheckpoints is a checkpoints file kept elsewhere (copied off the box earlier).
	ExtraCheckpoints string
	// PublicKey is the checkpoint key to trust; empty means dir/checkpoint.pub.
	PublicKey string
}

// Verify checks the trail in dir and in db: every line of the file and every row of
// the database parse, are numbered 1, 2, 3..., chain to the previous hash and hash to
// their own; the two copies hold the same records; every checkpoint (from the database,
// dir/checkpoints.log and opts.ExtraCheckpoints) is signed by the key and matches the
// Merkle root of the records it covers. It stops at the first problem. An error means
// the check could not be done at all.
func Verify(ctx context.Context, db *sql.DB, dir string, opts VerifyOptions) (Report, error) {
	pubPath := opts.PublicKey
	if pubPath == "" {
		pubPath = filepath.Join(dir, PublicKeyFile)
	}
	var pub ed25519.PublicKey
	if _, err := os.Stat(pubPath); err == nil || opts.PublicKey != "" {
		var err error
		if pub, err = ReadPublicKey(pubPath); err != nil {
			return Report{}, err
		}
	}
	cps, bad, err := collectCheckpoints(ctx, db, dir, opts.ExtraCheckpoints)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Checkpoints: len(cps)}
	if bad != "" {
		rep.Problem = bad
		return rep, nil
	}
	for _, cp := range cps {
		if pub == nil {
			rep.Problem = fmt.Sprintf("checkpoint at size %d cannot be checked: no public key %s", cp.Size, pubPath)
			return rep, nil
		}
		if err := cp.VerifySignature(pub); err != nil {
			rep.Problem = fmt.Sprintf("checkpoint at size %d: %v", cp.Size, err)
			return rep, nil
		}
	}

	path := filepath.Join(dir, RecordsFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		f = nil
	} else if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	} else {
		defer f.Close()
	}
	rows, err := db.QueryContext(ctx, `SELECT seq, time, actor, role, auth_method, source, action, object, before, after, details, prev, hash
		FROM audit_records ORDER BY seq`)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()

	var sc *bufio.Scanner
	if f != nil {
		sc = bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
	}
	tree := newTree()
	prev := genesis
	next := 0 // index into cps
	fail := func(seq uint64, format string, args ...any) (Report, error) {
		rep.FirstBad, rep.Problem = seq, fmt.Sprintf(format, args...)
		return rep, nil
	}
	for seq := uint64(1); ; seq++ {
		var fr, dr *Record
		if sc != nil && sc.Scan() {
			r, err := parseLine(sc.Bytes())
			if err != nil {
				return fail(seq, "%s line %d: %v", path, seq, err)
			}
			fr = &r
		}
		if rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return fail(seq, "database row: %v", err)
			}
			dr = &r
		}
		if fr == nil && dr == nil {
			break
		}
		if fr == nil {
			return fail(seq, "missing from %s, which ends after record %d: the file was truncated", path, seq-1)
		}
		if dr == nil {
			return fail(seq, "in %s but missing from the database, which ends after record %d", path, seq-1)
		}
		for _, c := range []struct {
			where string
			r     *Record
		}{{path, fr}, {"the database", dr}} {
			switch {
			case c.r.Seq != seq:
				return fail(seq, "%s has record %d where record %d belongs", c.where, c.r.Seq, seq)
			case c.r.Prev != prev:
				return fail(seq, "%s: previous-hash %.12s… does not match record %d's hash %.12s…", c.where, c.r.Prev, seq-1, prev)
			case c.r.ComputeHash() != c.r.Hash:
				return fail(seq, "%s: content does not match its hash (the record was changed)", c.where)
			}
		}
		if fr.Hash != dr.Hash {
			return fail(seq, "differs between %s and the database", path)
		}
		prev = fr.Hash
		b, _ := hex.DecodeString(fr.Hash)
		tree.append(b)
		rep.Records = seq
		for next < len(cps) && cps[next].Size == seq {
			cp := cps[next]
			if hex.EncodeToString(tree.root()) != cp.Root || cp.LastHash != fr.Hash {
				return fail(seq, "checkpoint of %s (size %d) does not match the records it covers: records up to %d were changed", clockString(cp.Time), cp.Size, seq)
			}
			next++
		}
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	if sc != nil {
		if err := sc.Err(); err != nil {
			return fail(rep.Records+1, "%s: %v", path, err)
		}
	}
	if next < len(cps) {
		cp := cps[next]
		return fail(rep.Records+1, "checkpoint of %s covers %d records but the trail has only %d: records were removed from both copies",
			clockString(cp.Time), cp.Size, rep.Records)
	}
	rep.OK = true
	return rep, nil
}

func clockString(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// collectCheckpoints merges the checkpoints of the database and the files, sorted by
// size. Two different checkpoints for one size are reported as bad.
func collectCheckpoints(ctx context.Context, db *sql.DB, dir, extra string) ([]Checkpoint, string, error) {
	bySize := map[uint64]Checkpoint{}
	add := func(where string, cp Checkpoint) string {
		if have, ok := bySize[cp.Size]; ok && (have.Root != cp.Root || have.Signature != cp.Signature) {
			return fmt.Sprintf("two different checkpoints for size %d (one in %s)", cp.Size, where)
		}
		bySize[cp.Size] = cp
		return ""
	}
	rows, err := db.QueryContext(ctx, `SELECT size, time, root, last_hash, key_id, signature FROM audit_checkpoints`)
	if err != nil {
		return nil, "", fmt.Errorf("audit: read checkpoints: %w", err)
	}
	for rows.Next() {
		var cp Checkpoint
		var t string
		if err := rows.Scan(&cp.Size, &t, &cp.Root, &cp.LastHash, &cp.KeyID, &cp.Signature); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("audit: read checkpoints: %w", err)
		}
		cp.Time, _ = time.Parse(timeFormat, t)
		if bad := add("the database", cp); bad != "" {
			rows.Close()
			return nil, bad, nil
		}
	}
	rows.Close()
	for _, p := range []string{filepath.Join(dir, CheckpointsFile), extra} {
		if p == "" {
			continue
		}
		cps, err := ReadCheckpoints(p)
		if errors.Is(err, fs.ErrNotExist) && p != extra {
			continue
		}
		if err != nil {
			return nil, err.Error(), nil
		}
		for _, cp := range cps {
			if bad := add(p, cp); bad != "" {
				return nil, bad, nil
			}
		}
	}
	var out []Checkpoint
	for _, cp := range bySize {
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b Checkpoint) int { return int(a.Size) - int(b.Size) })
	return out, "", nil
}

// ReadCheckpoints reads a checkpoints file (one JSON checkpoint per line).
func ReadCheckpoints(path string) ([]Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	defer f.Close()
	var out []Checkpoint
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var cp Checkpoint
		dec := json.NewDecoder(bufio.NewReader(bytesReader(sc.Bytes())))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cp); err != nil {
			return nil, fmt.Errorf("%s:%d: not a checkpoint: %v", path, n, err)
		}
		out = append(out, cp)
	}
	return out, sc.Err()
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(s scanner) (Record, error) {
	var r Record
	var t, details string
	if err := s.Scan(&r.Seq, &t, &r.Actor, &r.Role, &r.AuthMethod, &r.Source, &r.Action, &r.Object, &r.Before, &r.After, &details, &r.Prev, &r.Hash); err != nil {
		return r, err
	}
	var err error
	if r.Time, err = time.Parse(timeFormat, t); err != nil {
		return r, fmt.Errorf("record %d: bad time %q", r.Seq, t)
	}
	if details != "" {
		if err := json.Unmarshal([]byte(details), &r.Details); err != nil {
			return r, fmt.Errorf("record %d: bad details: %v", r.Seq, err)
		}
	}
	return r, nil
}

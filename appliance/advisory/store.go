package advisory

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/patchgate/patchgate/appliance/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrate applies the advisory component's migrations (its tables) to db.
func Migrate(ctx context.Context, db *store.DB) error {
	return db.MigrateFS(ctx, "advisory", migrationFS, "migrations")
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func pt(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// saveData replaces what source delivered, in one statement: the previous data stays
// until then.
func saveData(ctx context.Context, db *store.DB, source string, d Data, at time.Time) error {
	body, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO advisory_data(source, kind, version, fetched_at, body) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(source) DO UPDATE SET kind = excluded.kind, version = excluded.version, fetched_at = excluded.fetched_at, body = excluded.body`,
		source, d.Kind, d.Version, ts(at), string(body))
	return err
}

// loadData is what source last delivered (false when nothing is stored).
func loadData(ctx context.Context, db *store.DB, source string) (Data, bool, error) {
	var body string
	err := db.QueryRowContext(ctx, `SELECT body FROM advisory_data WHERE source = ?`, source).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Data{}, false, nil
	}
	if err != nil {
		return Data{}, false, err
	}
	var d Data
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return Data{}, false, fmt.Errorf("stored data of %s: %w", source, err)
	}
	return d, true, nil
}

// SourceInfo is one stored delivery: a feed's or an import's.
type SourceInfo struct {
	Source     string    `json:"source"`
	Kind       string    `json:"kind"`
	Version    string    `json:"version,omitempty"`
	FetchedAt  time.Time `json:"fetched_at"`
	Advisories int       `json:"advisories"`
	KEV        int       `json:"kev_entries"`
}

func loadCorpus(ctx context.Context, db *store.DB) (Corpus, []SourceInfo, error) {
	type row struct {
		info SourceInfo
		body string
	}
	rows, err := store.Query(ctx, db, func(r store.Row) (row, error) {
		var x row
		var at string
		err := r.Scan(&x.info.Source, &x.info.Kind, &x.info.Version, &at, &x.body)
		x.info.FetchedAt = pt(at)
		return x, err
	}, `SELECT source, kind, version, fetched_at, body FROM advisory_data ORDER BY source`)
	if err != nil {
		return nil, nil, err
	}
	c := Corpus{}
	infos := make([]SourceInfo, 0, len(rows))
	for _, x := range rows {
		var d Data
		if err := json.Unmarshal([]byte(x.body), &d); err != nil {
			return nil, nil, fmt.Errorf("stored data of %s: %w", x.info.Source, err)
		}
		c[x.info.Source] = d
		x.info.Advisories, x.info.KEV = len(d.Advisories), len(d.KEV)
		infos = append(infos, x.info)
	}
	return c, infos, nil
}

// PackageSet is what an agent last reported.
type PackageSet struct {
	Ecosystem string    `json:"ecosystem"`
	Packages  []Package `json:"packages"`
}

func savePackages(ctx context.Context, db *store.DB, agentID string, ps PackageSet, at time.Time) error {
	body, err := json.Marshal(ps.Packages)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO advisory_packages(agent_id, ecosystem, packages, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT(agent_id) DO UPDATE SET ecosystem = excluded.ecosystem, packages = excluded.packages, updated_at = excluded.updated_at`,
		agentID, ps.Ecosystem, string(body), ts(at))
	return err
}

func loadPackages(ctx context.Context, db *store.DB) (map[string]PackageSet, error) {
	type row struct {
		id string
		ps PackageSet
	}
	rows, err := store.Query(ctx, db, func(r store.Row) (row, error) {
		var x row
		var body string
		if err := r.Scan(&x.id, &x.ps.Ecosystem, &body); err != nil {
			return x, err
		}
		return x, json.Unmarshal([]byte(body), &x.ps.Packages)
	}, `SELECT agent_id, ecosystem, packages FROM advisory_packages`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]PackageSet, len(rows))
	for _, x := range rows {
		out[x.id] = x.ps
	}
	return out, nil
}

// Finding is a match as it is kept: when it was first and last seen, when it closed,
// and the release that fixes it. Deadline is computed when it is read.
type Finding struct {
	Match
	ReleaseID   string    `json:"release_id,omitempty"`
	ReleaseName string    `json:"release,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	Deadline    time.Time `json:"deadline,omitzero"`
	Overdue     bool      `json:"overdue,omitempty"`
	notified    bool
}

// State is open, ambiguous or closed.
func (f Finding) State() string {
	switch {
	case !f.ClosedAt.IsZero():
		return "closed"
	case f.Ambiguous:
		return "ambiguous"
	}
	return "open"
}

const findingCols = `match, release_id, release_name, first_seen, last_seen, closed_at, notified`

func scanFinding(r store.Row) (Finding, error) {
	var f Finding
	var m, first, last, closed string
	var notified int
	if err := r.Scan(&m, &f.ReleaseID, &f.ReleaseName, &first, &last, &closed, &notified); err != nil {
		return f, err
	}
	if err := json.Unmarshal([]byte(m), &f.Match); err != nil {
		return f, fmt.Errorf("stored finding: %w", err)
	}
	f.FirstSeen, f.LastSeen, f.ClosedAt, f.notified = pt(first), pt(last), pt(closed), notified != 0
	return f, nil
}

func listFindings(ctx context.Context, q store.Querier, where string, args ...any) ([]Finding, error) {
	return store.Query(ctx, q, scanFinding, `SELECT `+findingCols+` FROM advisory_findings `+where+` ORDER BY asset_id, vuln`, args...)
}

func putFinding(ctx context.Context, tx *sql.Tx, f Finding) error {
	m, err := json.Marshal(f.Match)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO advisory_findings(asset_id, vuln, asset, match, severity, exploited, ambiguous, release_id, release_name, first_seen, last_seen, closed_at, notified)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(asset_id, vuln) DO UPDATE SET asset = excluded.asset, match = excluded.match, severity = excluded.severity,
			exploited = excluded.exploited, ambiguous = excluded.ambiguous, release_id = excluded.release_id,
			release_name = excluded.release_name, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
			closed_at = excluded.closed_at, notified = excluded.notified`,
		f.AssetID, f.Vuln, f.Asset, string(m), f.Severity, b2i(f.Exploited), b2i(f.Ambiguous), f.ReleaseID, f.ReleaseName,
		ts(f.FirstSeen), ts(f.LastSeen), ts(f.ClosedAt), b2i(f.notified))
	return err
}

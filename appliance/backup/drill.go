package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/clock"
)

// Drill restores the archive in r into a fresh directory under tmp (as Restore does,
// with every check), verifies the restored audit trail, which now ends with the
// appliance.restore record, counts the restored tables and rows, and removes it all
// again. The result says what was proven; it is also what the status page shows once
// saved with SaveDrill.
func Drill(ctx context.Context, r io.Reader, ids []age.Identity, known map[string]int, tmp, archive string, clk clock.Clock) DrillResult {
	if clk == nil {
		clk = clock.Real{}
	}
	res := DrillResult{Time: clk.Now().UTC(), Archive: filepath.Base(archive)}
	err := drill(ctx, r, ids, known, tmp, archive, clk, &res)
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

func drill(ctx context.Context, r io.Reader, ids []age.Identity, known map[string]int, tmp, archive string, clk clock.Clock, res *DrillResult) error {
	dir, err := os.MkdirTemp(tmp, "patchgate-drill-*")
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	defer os.RemoveAll(dir)
	state := filepath.Join(dir, "state")
	m, err := Restore(ctx, r, ids, RestoreOptions{StateDir: state, AuditDir: filepath.Join(dir, "audit"), Known: known,
		Actor: "system:drill", Archive: archive, Clock: clk})
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	auditDir := filepath.Join(state, "audit")
	if hasPrefix(m, prefixAudit) {
		auditDir = filepath.Join(dir, "audit")
	}
	db, err := openReadOnly(filepath.Join(state, "patchgate.db"))
	if err != nil {
		return fmt.Errorf("drill: restored database: %w", err)
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db, auditDir, audit.VerifyOptions{})
	if err != nil {
		return fmt.Errorf("drill: audit verify: %w", err)
	}
	if !rep.OK {
		return fmt.Errorf("drill: restored audit trail: %s", rep)
	}
	res.AuditRecords = rep.Records
	for _, t := range m.Tables {
		res.Tables++
		res.Rows += t.Rows
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check and export the audit trail",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd())
	return cmd
}

// openAuditDB opens the database named by the config, read for the audit trail.
func openAuditDB(ctx context.Context, path string) (*config.Config, *store.DB, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStateDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if v, err := db.Version(ctx, "audit"); err != nil || v == 0 {
		db.Close()
		return nil, nil, fmt.Errorf("no audit trail in %s (has the appliance run yet?)", cfg.State.Path("patchgate.db"))
	}
	return cfg, db, nil
}

func newAuditVerifyCmd() *cobra.Command {
	var path, extra, pub string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --config FILE [--checkpoints FILE] [--public-key FILE]",
		Short: "Check the whole hash chain, both copies and every signed checkpoint; name the first bad record",
		Long: `verify reads every record of the audit file and of the database, checks that they are
numbered without gaps, that each chains to the previous record's hash and hashes to its own,
that the two copies are equal, and that every signed checkpoint (from the database, the
checkpoints.log beside the file and --checkpoints, a copy kept off the box) matches the
records it covers. Exit status: 0 good, 2 bad (the first bad record is named), 1 could not check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, db, err := openAuditDB(ctx, path)
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			defer db.Close()
			opts := audit.VerifyOptions{ExtraCheckpoints: extra, PublicKey: pub}
			rep, err := audit.Verify(ctx, db.DB, cfg.AuditDir(), opts)
			if err == nil && !rep.OK && strings.Contains(rep.Problem, "missing from the database") {
				// The running appliance syncs a record to the file just before its
				// transaction commits: look again once before calling it bad.
				time.Sleep(time.Second)
				rep, err = audit.Verify(ctx, db.DB, cfg.AuditDir(), opts)
			}
			if err != nil {
				return fmt.Errorf("audit verify: %w", err)
			}
			if asJSON {
				b, _ := json.MarshalIndent(rep, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), rep)
			}
			if !rep.OK {
				return &exitError{code: 2, err: fmt.Errorf("audit verify: the trail is not intact")}
			}
			return nil
		},
	}
	configFlag(cmd, &path, "")
	cmd.Flags().StringVar(&extra, "checkpoints", "", "a checkpoints file kept elsewhere, checked too")
	cmd.Flags().StringVar(&pub, "public-key", "", "the checkpoint public key to trust (default: checkpoint.pub beside the trail)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var path, from, to, format, out string
	cmd := &cobra.Command{
		Use:   "export --config FILE [--from DATE] [--to DATE] --format csv|json [--out FILE]",
		Short: "Write the audit records of a time range as CSV or JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f, err := parseDay(from)
			if err != nil {
				return fmt.Errorf("audit export: --from: %w", err)
			}
			t, err := parseDay(to)
			if err != nil {
				return fmt.Errorf("audit export: --to: %w", err)
			}
			_, db, err := openAuditDB(ctx, path)
			if err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
			defer db.Close()
			var w io.Writer = cmd.OutOrStdout()
			if out != "" && out != "-" {
				file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
				if err != nil {
					return fmt.Errorf("audit export: %w", err)
				}
				defer file.Close()
				w = file
			}
			if err := audit.Export(ctx, db.DB, f, t, format, w); err != nil {
				return fmt.Errorf("audit export: %w", err)
			}
			return nil
		},
	}
	configFlag(cmd, &path, "")
	cmd.Flags().StringVar(&from, "from", "", "first day (2026-01-01) or RFC 3339 time, inclusive; empty: the beginning")
	cmd.Flags().StringVar(&to, "to", "", "day or time, exclusive; empty: now")
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json")
	cmd.Flags().StringVar(&out, "out", "", "file to write (refuses to overwrite); default standard output")
	return cmd
}

func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want a date like 2026-01-31 or an RFC 3339 time, got %q", s)
}

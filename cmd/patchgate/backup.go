package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/backup"
	"github.com/patchgate/patchgate/appliance/config"
)

func newBackupCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "backup --config FILE",
		Short: "Make an encrypted backup of the appliance's state now, to the configured targets",
		Long: `backup takes a consistent snapshot of the database while the appliance runs, and archives
it with the config file and everything under the state directory except the cache's objects,
encrypted to backup.recipients, to backup.local.dir and/or backup.s3 (see
appliance/backup/README.md). The daemon makes the same backups every backup.interval and
records them in the audit trail; this command does not write the trail.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if !cfg.Backup.Enabled() {
				return fmt.Errorf("backup: not configured: set backup.recipients and backup.local.dir or backup.s3 in %s", path)
			}
			db, err := openStateDB(ctx, cfg)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer db.Close()
			svc, err := appliance.NewBackup(cfg, db, appliance.BackupOptions{ConfigPath: path, Version: version})
			if err != nil {
				return err
			}
			r, err := svc.Backup(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d files, %d bytes, to %v\n", r.Archive, r.Files, r.Size, r.Targets)
			return nil
		},
	}
	configFlag(cmd, &path, "")
	cmd.AddCommand(newBackupDrillCmd())
	return cmd
}

func newBackupDrillCmd() *cobra.Command {
	var path, identity string
	cmd := &cobra.Command{
		Use:   "drill --config FILE --identity FILE [ARCHIVE]",
		Short: "Restore a backup into a scratch directory, verify it all, and show the result on the status page",
		Long: `drill restores ARCHIVE (default: the newest in backup.local.dir) as restore would, into a
temporary directory: decryption, the manifest's hashes, schema versions, every table's rows
and the audit chain are checked, then the restored trail is verified again with the restore
recorded in it. The result is kept in STATE/backup/drill.json for the status page.
Exit status: 0 good, 2 the drill failed, 1 it could not be run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			ids, err := readIdentities(identity)
			if err != nil {
				return fmt.Errorf("backup drill: %w", err)
			}
			archive := ""
			if len(args) == 1 {
				archive = args[0]
			} else if cfg.Backup.Local.Dir != "" {
				names, err := backup.LocalTarget{Dir: cfg.Backup.Local.Dir}.List()
				if err != nil || len(names) == 0 {
					return fmt.Errorf("backup drill: no archive in %s (%v); name one", cfg.Backup.Local.Dir, err)
				}
				archive = filepath.Join(cfg.Backup.Local.Dir, names[len(names)-1])
			} else {
				return fmt.Errorf("backup drill: name the archive (no backup.local.dir)")
			}
			f, known, err := openArchive(ctx, "backup drill", archive)
			if err != nil {
				return err
			}
			defer f.Close()
			res := backup.Drill(ctx, f, ids, known, os.TempDir(), archive, nil)
			if err := backup.SaveDrill(cfg.State.Path("backup"), res); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "backup drill: the result could not be saved for the status page: %v\n", err)
			}
			if !res.OK {
				fmt.Fprintln(cmd.OutOrStdout(), "FAILED:", res.Error)
				return &exitError{code: 2, err: fmt.Errorf("backup drill: %s", res.Error)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s restored and verified: %d tables, %d rows, %d audit records\n",
				res.Archive, res.Tables, res.Rows, res.AuditRecords)
			return nil
		},
	}
	configFlag(cmd, &path, "")
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file (AGE-SECRET-KEY-...) of one of backup.recipients")
	cmd.MarkFlagRequired("identity")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var identity, state, configOut, auditDir string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --identity FILE --state DIR [--config-out FILE] [--force] ARCHIVE",
		Short: "Restore a backup onto a fresh appliance (stopped), after verifying all of it",
		Long: `restore decrypts ARCHIVE with the identity into a staging directory beside DIR and checks
everything before it writes: the manifest's sizes and hashes of every member, schema versions
no newer than this binary knows, every table's rows, and the audit chain. Only then is the
state moved into DIR (which must be empty or missing; --force moves an existing one aside to
DIR.pre-restore-TIME) and appliance.restore recorded in its audit trail. The archived config
is kept as DIR/restored/NAME and, with --config-out, written there too. Run it with the
appliance stopped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ids, err := readIdentities(identity)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			f, known, err := openArchive(ctx, "restore", args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := backup.Restore(ctx, f, ids, backup.RestoreOptions{StateDir: state, AuditDir: auditDir, ConfigOut: configOut,
				Force: force, Known: known, Actor: "system:restore", Archive: args[0]})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s (made %s by Patchgate %s): %d files, %d audit records, into %s\n",
				filepath.Base(args[0]), m.CreatedAt.Format("2006-01-02 15:04:05Z"), m.ApplianceVersion, len(m.Files), m.AuditRecords, state)
			if len(m.Pinned) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d pinned targets refill from upstream on the next rollout\n", len(m.Pinned))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&identity, "identity", "", "age identity file (AGE-SECRET-KEY-...)")
	cmd.Flags().StringVar(&state, "state", "", "state directory to restore into (state.dir of the config)")
	cmd.Flags().StringVar(&configOut, "config-out", "", "also write the archived config file here")
	cmd.Flags().StringVar(&auditDir, "audit-dir", "", "where an audit directory kept outside the state goes (default DIR/audit)")
	cmd.Flags().BoolVar(&force, "force", false, "move an existing state directory (and config) aside instead of refusing")
	cmd.MarkFlagRequired("identity")
	cmd.MarkFlagRequired("state")
	return cmd
}

// openArchive opens the backup archive at path and reads which schema versions this
// binary knows (what a restore may take).
func openArchive(ctx context.Context, op, path string) (*os.File, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	known, err := appliance.KnownSchemas(ctx)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, known, nil
}

// readIdentities reads an age identity file.
func readIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := age.ParseIdentities(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("identity %s: want an age identity file (AGE-SECRET-KEY-...): %v", path, err)
	}
	return ids, nil
}

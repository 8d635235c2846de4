package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/appliance/advisory"
	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/backup"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/inventory"
	"github.com/patchgate/patchgate/appliance/rollout"
	"github.com/patchgate/patchgate/appliance/store"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/clock"
)

// buildBackup builds the backup service (backup section): scheduled encrypted backups
// of the state to the configured targets, each recorded in the audit trail, the panel
// with the last backup and the last restore drill, and health when backups fail or stop.
func (s *System) buildBackup(context.Context) error {
	o := BackupOptions{ConfigPath: s.opts.ConfigPath, Version: s.opts.Build.Version, Clock: s.clock,
		Logger: s.log.With("svc", "backup"), Registerer: s.registry, Audit: s.audit, Failed: s.notifyBackup}
	if s.updates != nil {
		o.Pinned = func() []backup.Pin {
			var out []backup.Pin
			for _, p := range s.updates.cache.Pins() {
				out = append(out, backup.Pin{Repo: p.Repo, Path: p.Path})
			}
			return out
		}
	}
	svc, err := NewBackup(s.cfg, s.db, o)
	if err != nil {
		return err
	}
	s.services = append(s.services, svc)
	s.AddPanel(backupPanel(svc))
	return nil
}

// BackupOptions are what NewBackup needs besides the config and the database.
type BackupOptions struct {
	ConfigPath string // the config file, archived with the state
	Version    string
	Clock      clock.Clock
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Audit      *audit.Log          // nil: backups are not recorded (the CLI records nothing)
	Pinned     func() []backup.Pin // the cache's pinned targets; nil: none listed
	// Failed, when set, hears of every backup after the audit trail (notifications).
	Failed func(ctx context.Context, r backup.Result)
}

// NewBackup builds the backup service for cfg over the open database db: the daemon's
// scheduled backups and patchgate backup share it. What is archived is named here
// (BackupSources).
func NewBackup(cfg *config.Config, db *store.DB, o BackupOptions) (*backup.Service, error) {
	opts := backup.Options{Sources: BackupSources(cfg, db, o.ConfigPath), StatusDir: cfg.State.Path("backup"),
		Version: o.Version, Clock: o.Clock, Logger: o.Logger, Registerer: o.Registerer, Pinned: o.Pinned}
	opts.Events = func(ctx context.Context, r backup.Result) {
		if o.Audit != nil {
			backupAudit{o.Audit, o.Logger}.record(ctx, r)
		}
		if o.Failed != nil {
			o.Failed(ctx, r)
		}
	}
	svc, err := backup.New(cfg.Backup.Config(), opts)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return svc, nil
}

// BackupSources names every piece of the appliance's state on disk: the whole state
// directory (database by snapshot; TUF keys and metadata, audit trail, TLS and site CA
// material, self-update requests) and the audit directory and config file wherever they
// are; less the cache's objects and the backup's own work files and local target.
func BackupSources(cfg *config.Config, db *store.DB, configPath string) backup.Sources {
	src := backup.Sources{DB: db.DB, DBFile: db.Path(), StateDir: cfg.State.Dir, ConfigFile: configPath,
		AuditDir: cfg.AuditDir(), CacheDir: cfg.Cache.Dir, WorkDir: cfg.State.Path("backup", "tmp")}
	if src.CacheDir == "" {
		src.CacheDir = cfg.State.Path("cache")
	}
	if d := cfg.Backup.Local.Dir; d != "" {
		src.Skip = append(src.Skip, d)
	}
	return src
}

// KnownSchemas are the schema versions this binary gives a fresh database, by
// component: every subsystem with tables migrates a scratch database, which is then
// removed. Restore refuses archives with newer ones.
func KnownSchemas(ctx context.Context) (map[string]int, error) {
	dir, err := os.MkdirTemp("", "patchgate-schemas-*")
	if err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "patchgate.db"))
	if err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	defer db.Close()
	l, err := audit.Open(ctx, db, audit.Options{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	defer l.Close()
	if _, err := auth.New(ctx, db, auth.Options{Audit: l}); err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	if _, err := inventory.Open(ctx, db, inventory.Options{}); err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	if err := rollout.Migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	if err := supply.Migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	if err := advisory.Migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("known schemas: %w", err)
	}
	return backup.SchemaVersions(ctx, db.DB)
}

// backupAudit records every backup made or failed.
type backupAudit struct {
	l   *audit.Log
	log *slog.Logger
}

func (a backupAudit) record(ctx context.Context, r backup.Result) {
	action := "appliance.backup.ok"
	d := map[string]string{"archive": r.Archive, "scheduled": fmt.Sprint(r.Scheduled), "started": r.Started.Format(time.RFC3339)}
	if r.OK {
		d["size"] = fmt.Sprint(r.Size)
	} else {
		action, d["error"] = "appliance.backup.failed", r.Error
	}
	if err := a.l.Record(ctx, audit.Entry{Actor: "system:backup", Action: action, Object: "appliance", Details: d}); err != nil {
		a.log.Error("audit: backup not recorded", "err", err)
	}
}

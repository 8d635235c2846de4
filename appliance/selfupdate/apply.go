package selfupdate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/patchgate/patchgate/atomicfile"
	"github.com/patchgate/patchgate/cache"
	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/tuf"
)

// ApplyConfig is the root installer's configuration, taken from the config file the
// daemon reads (root-owned, read-only to the daemon) and from the running system.
type ApplyConfig struct {
	Dir    string // the request directory (the daemon's STATE/selfupdate)
	Repo   string // the repository publishing appliance versions
	Prefix string // their target directory
	// MetadataURL and TargetsURL are where the installer fetches the repository from:
	// the daemon's distribution listener on loopback, which serves the upstream's
	// metadata byte for byte. The installer does not trust it: it verifies the metadata
	// from TrustedRoot on.
	MetadataURL, TargetsURL string
	// TrustedRoot is the repository's pinned root.json (the file the config names).
	TrustedRoot []byte
	CacheDir    string            // the cache's store, where the staged files are read from
	Updater     *abupdate.Updater // writes the slot and the boot entry
	Running     string            // the running version
	Now         func() time.Time  // nil: time.Now
	Log         *slog.Logger
}

// ErrNoRequest means the request directory holds no request.
var ErrNoRequest = errors.New("selfupdate: apply: no request")

// Apply claims the daemon's request, carries it out, and leaves the result for the
// daemon to record. An install verifies the version against TUF from the trusted root
// on, reads the files the daemon staged, and lets abupdate check their lengths and
// hashes again while it writes. The returned result's Reboot says whether to restart
// now; the error is for failures to claim the request or to write the result.
func Apply(ctx context.Context, cfg ApplyConfig) (Result, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	applying := filepath.Join(cfg.Dir, ApplyingFile)
	// The rename claims the request (the path unit does not start again for it) and, as
	// rename does not follow a symbolic link, what is opened below is the daemon's file.
	if err := os.Rename(filepath.Join(cfg.Dir, RequestFile), applying); errors.Is(err, fs.ErrNotExist) {
		return Result{}, ErrNoRequest
	} else if err != nil {
		return Result{}, fmt.Errorf("selfupdate: apply: claim the request: %w", err)
	}
	res := Result{Started: now().UTC()}
	data, err := readFile(applying)
	var r Request
	if err == nil {
		r, err = ParseRequest(data)
	}
	if err != nil {
		res.ID, res.Action, res.Error = newID(), "invalid", "unreadable request: "+err.Error()
	} else {
		res.ID, res.Action, res.Version, res.RequestedBy = r.ID, r.Action, r.Version, r.RequestedBy
		cfg.Log.Info("applying", "action", r.Action, "version", r.Version, "requested_by", r.RequestedBy)
		switch r.Action {
		case ActionInstall:
			err = install(ctx, cfg, r.Version)
		case ActionRollback:
			var prev abupdate.Entry
			prev, err = cfg.Updater.Rollback()
			res.Version = prev.Version
		}
		res.OK, res.Reboot = err == nil, err == nil && r.Reboot
		if err != nil {
			res.Error = err.Error()
		}
	}
	res.Finished = now().UTC()
	if err := writeResult(cfg.Dir, res); err != nil {
		return res, fmt.Errorf("selfupdate: apply: result: %w", err)
	}
	if err := os.Remove(applying); err != nil {
		return res, fmt.Errorf("selfupdate: apply: %w", err)
	}
	return res, nil
}

// install verifies version against the repository and installs it from the cache.
func install(ctx context.Context, cfg ApplyConfig, version string) error {
	if cfg.Repo == "" {
		return fmt.Errorf("install %s: no update repository is configured (selfupdate.repository)", version)
	}
	if abupdate.CompareVersions(version, cfg.Running) <= 0 {
		return fmt.Errorf("install %s: not newer than the running %s (a rollback goes back)", version, cfg.Running)
	}
	tmp, err := os.MkdirTemp("", "patchgate-apply-")
	if err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	defer os.RemoveAll(tmp)
	m, err := tuf.NewMirror(tuf.MirrorConfig{Name: cfg.Repo, MetadataURL: cfg.MetadataURL, TargetsURL: cfg.TargetsURL,
		TrustedRoot: cfg.TrustedRoot, StateDir: tmp}, tuf.Options{Logger: cfg.Log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	if err := m.Refresh(ctx); err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	v, err := resolve(cfg.Prefix, ManifestPath(cfg.Prefix, version), func(p string) (tuf.TargetInfo, error) { return m.Target(ctx, p) })
	if err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	root, err := openStaged(cfg.CacheDir, v.Root)
	if err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	defer root.Close()
	uki, err := openStaged(cfg.CacheDir, v.UKI)
	if err != nil {
		return fmt.Errorf("install %s: %w", version, err)
	}
	defer uki.Close()
	return cfg.Updater.InstallManifest(ctx, v.Manifest, root, uki)
}

// openStaged opens the cache's copy of t (the bytes are checked while they are written).
func openStaged(dir string, t tuf.TargetInfo) (*os.File, error) {
	sum, _ := t.SHA256() // resolve made sure it is listed
	p, err := cache.ObjectFile(dir, sum)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("%s is not staged in the cache: %w", t.Path, err)
	}
	return f, nil
}

// writeResult leaves res in dir, owned like dir, so that the daemon can rename it.
func writeResult(dir string, res Result) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner", dir)
	}
	data, err := encode(res)
	if err != nil {
		return err
	}
	return atomicfile.WriteOwned(filepath.Join(dir, ResultFile), data, 0o600, int(st.Uid), int(st.Gid))
}

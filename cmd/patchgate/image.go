package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/selfupdate"
	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/image/firstboot"
	"github.com/patchgate/patchgate/tuf"
)

// newImageCmd is the appliance image's own tooling: its boot-time units call firstboot,
// netconfig and banner; an admin (root) calls status, install and rollback.
func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Appliance image tools: first boot, console banner, A/B install and rollback",
	}
	cmd.AddCommand(newImageFirstbootCmd(), newImageNetconfigCmd(), newImageBannerCmd(),
		newImageStatusCmd(), newImageInstallCmd(), newImageRollbackCmd(), newImageApplyCmd())
	return cmd
}

func newImageFirstbootCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "firstboot --state DIR",
		Short: "Make the admin TLS certificate unless it exists",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _ := os.Hostname()
			hosts := []string{host}
			if addrs, err := net.InterfaceAddrs(); err == nil {
				for _, a := range firstboot.HostAddresses(addrs) {
					hosts = append(hosts, a.String())
				}
			}
			id, err := firstboot.Ensure(state, hosts, time.Now(), rand.Reader)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin certificate SHA-256 %s\n", id.Fingerprint)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "/var/lib/private/patchgate", "the daemon's state directory")
	return cmd
}

func newImageNetconfigCmd() *cobra.Command {
	var file, out string
	cmd := &cobra.Command{
		Use:   "netconfig --file patchgate-firstboot.yaml --out DIR",
		Short: "Write a systemd-networkd file for the static address in the first-boot file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, err := firstboot.ParseConfig(file, data)
			if err != nil {
				return err
			}
			if err := firstboot.WriteNetwork(out, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "static address %s from %s\n", c.Address, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "/efi/"+firstboot.ConfigFile, "first-boot file")
	cmd.Flags().StringVar(&out, "out", "/run/systemd/network", "systemd-networkd directory to write to")
	return cmd
}

func newImageBannerCmd() *cobra.Command {
	var state, issue, cfgPath, unit string
	var consoles []string
	cmd := &cobra.Command{
		Use:   "banner --state DIR [--issue FILE] [--console DEV]...",
		Short: "Show the admin address, certificate fingerprint and setup token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := firstboot.Load(state)
			if err != nil {
				return err
			}
			info := firstboot.BannerInfo{Version: version, Identity: id, AdminPort: 9080}
			if cfg, err := config.Load(cfgPath); err == nil {
				if _, p, err := net.SplitHostPort(cfg.Admin.Listen); err == nil {
					info.AdminPort, _ = strconv.Atoi(p)
				}
				if cfg.Auth.TLS.Mode == "off" {
					info.Scheme = "http"
				}
			}
			if addrs, err := net.InterfaceAddrs(); err == nil {
				info.Addresses = firstboot.HostAddresses(addrs)
			}
			// The daemon makes the setup token at start and logs it; take the last one
			// from this boot's journal.
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "journalctl", "-u", unit, "-b", "-o", "cat", "--no-pager").Output(); err == nil {
				info.Identity.Token = firstboot.SetupTokenFromLog(bytes.NewReader(out))
			}
			outs := []io.Writer{cmd.OutOrStdout()}
			for _, c := range consoles {
				f, err := os.OpenFile(c, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil { // a console that is not there (no serial port) is fine
					continue
				}
				defer f.Close()
				outs = append(outs, f)
			}
			if issue != "" {
				if err := os.MkdirAll(filepath.Dir(issue), 0o755); err != nil {
					return err
				}
				f, err := os.Create(issue)
				if err != nil {
					return err
				}
				defer f.Close()
				outs = append(outs, f)
			}
			return firstboot.Banner(io.MultiWriter(outs...), info)
		},
	}
	cmd.Flags().StringVar(&state, "state", "/var/lib/private/patchgate", "the daemon's state directory")
	cmd.Flags().StringVar(&issue, "issue", "", "also write the banner to this file (for agetty's issue.d)")
	configFlag(cmd, &cfgPath, "config file (for the admin port)")
	cmd.Flags().StringArrayVar(&consoles, "console", nil, "also write to this terminal device")
	cmd.Flags().StringVar(&unit, "unit", "patchgate.service", "the daemon's unit, whose journal has the setup token")
	return cmd
}

// updaterFlags are the places an A/B install works on.
type updaterFlags struct {
	esp, slotA, slotB, cmdline string
	tries                      int
}

func (f *updaterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.esp, "esp", "/efi", "where the EFI system partition is mounted")
	cmd.Flags().StringVar(&f.slotA, "slot-a", "/dev/disk/by-partlabel/patchgate-root-a", "root slot A")
	cmd.Flags().StringVar(&f.slotB, "slot-b", "/dev/disk/by-partlabel/patchgate-root-b", "root slot B")
	cmd.Flags().StringVar(&f.cmdline, "cmdline", "/proc/cmdline", "the running kernel's command line")
}

func (f *updaterFlags) updater(log *slog.Logger) (*abupdate.Updater, error) {
	running, err := abupdate.RunningRootUUID(f.cmdline)
	if err != nil {
		return nil, err
	}
	return &abupdate.Updater{ESP: f.esp, Slots: [2]string{f.slotA, f.slotB}, RunningRoot: running, Tries: f.tries, Log: log}, nil
}

func newImageStatusCmd() *cobra.Command {
	var f updaterFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the installed appliance versions: running, good, pending (not yet proven) or bad",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := f.updater(nil)
			if err != nil {
				return err
			}
			st, err := u.Status()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSTATE\tRUNNING\tTRIES LEFT\tENTRY")
			for _, e := range st.Entries {
				run, tries := "", "-"
				if e.Version == st.Running {
					run = "yes"
				}
				if e.Counting {
					tries = strconv.Itoa(e.TriesLeft)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Version, e.State(), run, tries, e.File)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newImageInstallCmd() *cobra.Command {
	var f updaterFlags
	var manifest, ver, root, rootSum, uki, ukiSum string
	cmd := &cobra.Command{
		Use:   "install (--manifest FILE | --version V --root FILE --root-sha256 HEX --uki FILE --uki-sha256 HEX)",
		Short: "Install an appliance version into the inactive slot; the next boot tries it",
		Long: `install writes the root filesystem image into the slot the running system does not use
and the UKI onto the ESP with a boot counter, checking lengths and SHA-256 sums while they
stream. --manifest takes an update bundle as make image writes it (image/out/update/:
patchgate-VERSION.update.json beside a gzip-compressed root image and the UKI); otherwise
give the uncompressed root image, the UKI and their sums (from the verified TUF targets).
The next boot tries the new version; if it does not come up three times, the previous
one boots again by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			u, err := f.updater(log)
			if err != nil {
				return err
			}
			if manifest != "" {
				data, err := os.ReadFile(manifest)
				if err != nil {
					return err
				}
				m, err := abupdate.ParseManifest(data)
				if err != nil {
					return fmt.Errorf("%s: %w", manifest, err)
				}
				if err := u.InstallBundle(cmd.Context(), filepath.Dir(manifest), m); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "installed %s; reboot to try it\n", m.Version)
				return nil
			}
			if ver == "" || root == "" || rootSum == "" || uki == "" || ukiSum == "" {
				return errors.New("image install: give --manifest, or all of --version, --root, --root-sha256, --uki and --uki-sha256")
			}
			open := func(path, sum string) (abupdate.Artifact, func(), error) {
				fh, err := os.Open(path)
				if err != nil {
					return abupdate.Artifact{}, nil, err
				}
				st, err := fh.Stat()
				if err != nil {
					fh.Close()
					return abupdate.Artifact{}, nil, err
				}
				return abupdate.Artifact{R: fh, Length: st.Size(), SHA256: sum}, func() { fh.Close() }, nil
			}
			ra, rclose, err := open(root, rootSum)
			if err != nil {
				return err
			}
			defer rclose()
			ua, uclose, err := open(uki, ukiSum)
			if err != nil {
				return err
			}
			defer uclose()
			if err := u.Install(cmd.Context(), ver, ra, ua); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed %s; reboot to try it\n", ver)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&f.tries, "tries", abupdate.DefaultTries, "boots the new version gets to come up")
	cmd.Flags().StringVar(&manifest, "manifest", "", "update bundle manifest (patchgate-VERSION.update.json)")
	cmd.Flags().StringVar(&ver, "version", "", "the version being installed")
	cmd.Flags().StringVar(&root, "root", "", "root filesystem image (uncompressed)")
	cmd.Flags().StringVar(&rootSum, "root-sha256", "", "its SHA-256 (hex)")
	cmd.Flags().StringVar(&uki, "uki", "", "unified kernel image")
	cmd.Flags().StringVar(&ukiSum, "uki-sha256", "", "its SHA-256 (hex)")
	return cmd
}

func newImageRollbackCmd() *cobra.Command {
	var f updaterFlags
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Mark the running version bad so that the next boot starts the previous one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := f.updater(slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil)))
			if err != nil {
				return err
			}
			prev, err := u.Rollback()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "next boot starts %s (%s); reboot now to roll back\n", prev.Version, prev.File)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newImageApplyCmd() *cobra.Command {
	var f updaterFlags
	var cfgPath string
	var noReboot bool
	cmd := &cobra.Command{
		Use:   "apply [--config FILE]",
		Short: "Carry out the daemon's install or rollback request (root; started by patchgate-selfupdate.path)",
		Long: `apply takes the request an admin made on the status page (STATE/selfupdate/request.json),
carries it out and leaves the result for the daemon to record in the audit trail. An
install verifies the version against the selfupdate repository's pinned root (the file the
config names), fetching the metadata from the daemon's distribution listener on loopback,
and reads the files the daemon staged in its cache; their lengths and hashes are checked
again while the slot and the boot entry are written. With the request's reboot flag the
appliance restarts into the new version (or the previous one, for a rollback).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			u, err := f.updater(log)
			if err != nil {
				return err
			}
			ac := selfupdate.ApplyConfig{Dir: cfg.State.Path("selfupdate"), Prefix: cfg.SelfUpdate.Prefix,
				CacheDir: cmp.Or(cfg.Cache.Dir, cfg.State.Path("cache")), Updater: u, Running: version, Log: log}
			if st, err := u.Status(); err == nil && st.Running != "" {
				ac.Running = st.Running
			}
			if name := cfg.SelfUpdate.Repository; name != "" {
				i := slices.IndexFunc(cfg.TUF.Repositories, func(r tuf.Repository) bool { return r.Name == name })
				if i < 0 {
					return fmt.Errorf("image apply: selfupdate.repository %s is not among tuf.repositories (the demo repository's root lives in the daemon's own state, so it cannot be trusted here)", name)
				}
				if ac.TrustedRoot, err = os.ReadFile(cfg.TUF.Repositories[i].Root); err != nil {
					return fmt.Errorf("image apply: %w", err)
				}
				base := "http://" + appliance.LoopbackAddr(cfg.Distribution.Listen) + "/repos/" + name + "/"
				ac.Repo, ac.MetadataURL, ac.TargetsURL = name, base+"metadata", base+"targets"
			}
			res, err := selfupdate.Apply(cmd.Context(), ac)
			if errors.Is(err, selfupdate.ErrNoRequest) {
				fmt.Fprintln(cmd.OutOrStdout(), "no request to apply")
				return nil
			}
			if err != nil {
				return err
			}
			if !res.OK {
				return fmt.Errorf("image apply: %s requested by %s failed: %s", res.Action, res.RequestedBy, res.Error)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s requested by %s: done\n", res.Action, res.Version, res.RequestedBy)
			if !res.Reboot || noReboot {
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), "rebooting")
			if out, err := exec.CommandContext(cmd.Context(), "systemctl", "--no-block", "reboot").CombinedOutput(); err != nil {
				return fmt.Errorf("image apply: systemctl reboot: %v: %s", err, out)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&f.tries, "tries", abupdate.DefaultTries, "boots a new version gets to come up")
	configFlag(cmd, &cfgPath, "the daemon's config file")
	cmd.Flags().BoolVar(&noReboot, "no-reboot", false, "do not reboot even if the request asks for it")
	return cmd
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/agentapi"
	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/tuf"
)

// withInstructions adds the install instructions in file to the custom metadata c,
// after checking them as strictly as an agent does.
func withInstructions(c []byte, file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tuf add: --instructions: %w", err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("tuf add: --instructions %s: not valid JSON", file)
	}
	in, err := agentapi.ParseInstructions(fmt.Appendf(nil, `{%q: %s}`, agentapi.CustomKey, raw))
	if err != nil {
		return nil, fmt.Errorf("tuf add: --instructions %s: %w", file, err)
	}
	if c, err = agentapi.WithInstructions(c, in); err != nil {
		return nil, fmt.Errorf("tuf add: --custom with --instructions: %w", err)
	}
	return c, nil
}

func newTUFCmd() *cobra.Command {
	var dir, rootKeys string
	cmd := &cobra.Command{
		Use:   "tuf",
		Short: "Publish a TUF repository of your own vetted patches",
		Long: `tuf maintains a TUF repository on disk for a site (or its MSP) that vets vendor patches
and signs them itself. Serve DIR/repository/metadata and DIR/repository/targets over HTTP
and name them in a patchgate config's tuf.repositories, pinning DIR/repository/metadata/1.root.json.

  patchgate tuf init --dir DIR                  keys, root, first (empty) publish
  patchgate tuf add FILE --path P --dir DIR     stage a target (streamed, sha256+sha512)
  patchgate tuf remove P --dir DIR              stage a removal
  patchgate tuf publish --dir DIR               sign new targets, snapshot, timestamp
  patchgate tuf rotate --role R --dir DIR       new keys for a role, new root, publish
  patchgate tuf root keygen|export|sign|import  the offline root ceremony (threshold signing)

Online keys (targets, snapshot, timestamp) live in DIR/keys; root keys in
DIR/root-keys unless --root-keys names another directory: keep them offline and
bring them only for init and rotate.`,
		Args: cobra.NoArgs,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", ".", "the repository directory")
	cmd.PersistentFlags().StringVar(&rootKeys, "root-keys", "", "directory of the root keys (default DIR/root-keys)")
	open := func() (*tuf.Publisher, error) {
		return tuf.OpenPublisher(dir, tuf.PublisherOptions{RootKeysDir: rootKeys})
	}

	var io tuf.InitOptions
	var rootPubs []string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Create keys, root version 1 and a first published state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			io.RootKeysDir = rootKeys
			for _, f := range rootPubs {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("tuf init: %w", err)
				}
				io.RootPublicKeys = append(io.RootPublicKeys, data)
			}
			p, err := tuf.InitRepository(cmd.Context(), dir, io)
			if err != nil {
				return err
			}
			if len(rootPubs) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "initialised %s; root version 1 awaits its signatures: copy %s to the holders (`patchgate tuf root sign`), then `patchgate tuf root import`\n",
					dir, filepath.Join(dir, "root-pending.json"))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised %s\npin this root in mirrors: %s\n", dir, p.RootPath())
			return nil
		},
	}
	f := initCmd.Flags()
	f.IntVar(&io.RootKeys, "root-keys-count", 1, "root keys to generate")
	f.StringArrayVar(&rootPubs, "root-pub", nil, "public key file of an offline root key (from tuf root keygen; repeatable): no root key is generated")
	f.IntVar(&io.RootThreshold, "root-threshold", 0, "root signatures required (default: all root keys)")
	f.DurationVar(&io.RootExpires, "root-expires", 365*24*time.Hour, "root metadata lifetime")
	f.DurationVar(&io.TargetsExpires, "targets-expires", 90*24*time.Hour, "targets metadata lifetime")
	f.DurationVar(&io.SnapshotExpires, "snapshot-expires", 7*24*time.Hour, "snapshot metadata lifetime")
	f.DurationVar(&io.TimestampExpires, "timestamp-expires", 24*time.Hour, "timestamp metadata lifetime (publish again before it ends)")

	var path, custom, instructions string
	addCmd := &cobra.Command{
		Use:   "add FILE --path P [--custom JSON] [--instructions FILE.json]",
		Short: "Stage FILE as target P (published by the next publish)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			var c []byte
			if custom != "" {
				c = []byte(custom)
			}
			if instructions != "" {
				if c, err = withInstructions(c, instructions); err != nil {
					return err
				}
			}
			ti, err := p.Add(cmd.Context(), args[0], path, c)
			if err != nil {
				return err
			}
			sum, _ := ti.SHA256()
			fmt.Fprintf(cmd.OutOrStdout(), "staged %s: %d bytes, sha256 %s (run publish)\n", ti.Path, ti.Length, sum)
			return nil
		},
	}
	addCmd.Flags().StringVar(&path, "path", "", "target path clients ask for, e.g. printers/fw-2.1.bin (required)")
	addCmd.Flags().StringVar(&custom, "custom", "", "custom JSON object listed with the target")
	addCmd.Flags().StringVar(&instructions, "instructions", "",
		`JSON file of install instructions, {"install": {"linux": {"command": ["/usr/bin/dpkg", "-i", "{file}"]}}}, signed with the target (agentapi.Instructions)`)
	addCmd.MarkFlagRequired("path")

	removeCmd := &cobra.Command{
		Use:   "remove P",
		Short: "Stage the removal of target P",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			if err := p.Remove(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "staged removal of %s (run publish)\n", args[0])
			return nil
		},
	}

	publishCmd := &cobra.Command{
		Use:   "publish",
		Short: "Sign and write new targets, snapshot and timestamp versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			pub, err := p.Publish(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published targets v%d, snapshot v%d, timestamp v%d (expires %s)\n",
				pub.Targets, pub.Snapshot, pub.Timestamp, pub.Expires.Format(time.RFC3339))
			return nil
		},
	}

	var ro tuf.RotateOptions
	rotateCmd := &cobra.Command{
		Use:   "rotate --role ROLE",
		Short: "Replace a role's keys (or renew root with --keep-keys) and publish",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			ids, err := p.Rotate(cmd.Context(), ro)
			if err != nil {
				return err
			}
			if ro.KeepKeys {
				fmt.Fprintf(cmd.OutOrStdout(), "renewed root with the same keys for %s\n", ro.Role)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "rotated %s to keys %v\n", ro.Role, ids)
			}
			return nil
		},
	}
	rf := rotateCmd.Flags()
	rf.StringVar(&ro.Role, "role", "", "root, targets, snapshot or timestamp (required)")
	rf.IntVar(&ro.Keys, "keys", 1, "new keys to generate")
	rf.IntVar(&ro.Threshold, "threshold", 0, "the role's new threshold (default: all new keys)")
	rf.BoolVar(&ro.KeepKeys, "keep-keys", false, "keep the keys; only renew root's version and expiry")
	rotateCmd.MarkFlagRequired("role")

	demoCmd := &cobra.Command{
		Use:   "demo --dir DIR",
		Short: "Create (or re-publish) the small signed demo repository that tuf.demo serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := appliance.PublishDemo(cmd.Context(), dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "demo repository in %s; root %s\n", dir, p.RootPath())
			return nil
		},
	}
	cmd.AddCommand(initCmd, addCmd, removeCmd, publishCmd, rotateCmd, demoCmd, newTUFRootCmd(open))
	return cmd
}

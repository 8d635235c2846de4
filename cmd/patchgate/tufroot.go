package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/tuf"
)

// newTUFRootCmd is `patchgate tuf root`: the offline root ceremony (tuf/README.md).
func newTUFRootCmd(open func() (*tuf.Publisher, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root",
		Short: "Root ceremony: keys made and kept off the appliance, threshold signing",
		Long: `The root keys never touch the appliance:

  patchgate tuf root keygen --out alice.pem          on each holder's machine
  patchgate tuf init --dir DIR --root-pub alice.pem.pub.json --root-pub ... --root-threshold 2
  patchgate tuf root export --dir DIR [--rotate-online] [--add-key F] [--remove-key ID] --out next.json
  patchgate tuf root sign --key alice.pem next.json  on each holder's machine (signs in place)
  patchgate tuf root import --dir DIR next-alice.json next-bob.json

import checks the signatures against the threshold of the current root and of the
new one, writes the new root version and re-signs snapshot and timestamp.`,
		Args: cobra.NoArgs,
	}

	var out string
	keygen := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make a root key: FILE (private, 0600) and FILE.pub.json (public)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, id, err := tuf.GenerateRootKey(out)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out+".pub.json", pub, 0o644); err != nil {
				return fmt.Errorf("tuf root keygen: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "root key %s\nprivate: %s (keep it offline)\npublic:  %s.pub.json\n", id, out, out)
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "private key file to create (required)")
	keygen.MarkFlagRequired("out")

	var ch tuf.RootChange
	var addKeys []string
	export := &cobra.Command{
		Use:   "export --out FILE",
		Short: "Write the next root version, unsigned, for the holders to sign",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			for _, f := range addKeys {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("tuf root export: %w", err)
				}
				ch.AddKeys = append(ch.AddKeys, data)
			}
			data, err := p.ExportRoot(ch)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("tuf root export: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "next root written to %s: have it signed (`patchgate tuf root sign`), then import\n", out)
			return nil
		},
	}
	ef := export.Flags()
	ef.StringVar(&out, "out", "", "file to write (required)")
	ef.BoolVar(&ch.RotateOnline, "rotate-online", false, "new timestamp and snapshot keys (routine, or a lost or leaked online key)")
	ef.StringArrayVar(&addKeys, "add-key", nil, "root public key file to add (repeatable)")
	ef.StringArrayVar(&ch.RemoveKeys, "remove-key", nil, "root key ID (8+ hex digits) to revoke (repeatable)")
	ef.IntVar(&ch.Threshold, "threshold", 0, "new root threshold (default: unchanged)")
	export.MarkFlagRequired("out")

	var key string
	sign := &cobra.Command{
		Use:   "sign --key KEYFILE ROOTFILE",
		Short: "Sign an exported root with a root key (on the holder's machine; ROOTFILE is rewritten)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("tuf root sign: %w", err)
			}
			signed, id, listed, err := tuf.SignRoot(data, key)
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], signed, 0o644); err != nil {
				return fmt.Errorf("tuf root sign: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s with key %s\n", args[0], id)
			if !listed {
				fmt.Fprintf(cmd.OutOrStdout(), "note: key %s is not a root key of this version (fine for a key of the current root being replaced)\n", id)
			}
			return nil
		},
	}
	sign.Flags().StringVar(&key, "key", "", "root private key file (required)")
	sign.MarkFlagRequired("key")

	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import signed copies of the pending root (threshold checked) and re-sign",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := open()
			if err != nil {
				return err
			}
			var signed [][]byte
			for _, f := range args {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("tuf root import: %w", err)
				}
				signed = append(signed, data)
			}
			v, err := p.ImportRoot(cmd.Context(), signed...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "root version %d published\n", v)
			return nil
		},
	}
	cmd.AddCommand(keygen, export, sign, imp)
	return cmd
}

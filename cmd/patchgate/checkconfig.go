package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCheckConfigCmd() *cobra.Command {
	var path string
	var show bool
	cmd := &cobra.Command{
		Use:   "check-config --config FILE",
		Short: "Check a config file; exit 0 when it is good, 1 with one line per problem when not",
		Long: `check-config decodes the file strictly and validates every section, printing every
problem as FILE:LINE: key: message. It writes nothing, so it is safe as systemd's ExecStartPre.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadValid(cmd, "check-config", path)
			if err != nil {
				return err
			}
			if show {
				fmt.Fprint(cmd.OutOrStdout(), cfg.Redacted())
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: ok\n", path)
			return nil
		},
	}
	configFlag(cmd, &path, "")
	cmd.Flags().BoolVar(&show, "show", false, "print the effective config (secrets as ********)")
	return cmd
}

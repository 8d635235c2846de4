package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/store"
)

// configFlag adds --config, the appliance's config file (default defaultConfig()), to
// cmd's own flags; usage "" says "config file".
func configFlag(cmd *cobra.Command, path *string, usage string) {
	if usage == "" {
		usage = "config file"
	}
	cmd.Flags().StringVar(path, "config", defaultConfig(), usage+" ($PATCHGATE_CONFIG)")
}

// loadValid loads the config at path for op. When it cannot (unreadable, or problems
// found), the error is printed whole to standard error and the command ends with exit
// status 1 and "op: PATH is not valid".
func loadValid(cmd *cobra.Command, op, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return nil, &exitError{code: 1, err: fmt.Errorf("%s: %s is not valid", op, path)}
	}
	return cfg, nil
}

// openStateDB opens the appliance's database in the config's state directory.
func openStateDB(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	return store.Open(ctx, cfg.State.Path("patchgate.db"))
}

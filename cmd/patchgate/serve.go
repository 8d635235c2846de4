package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance"
	"github.com/patchgate/patchgate/appliance/config"
	"github.com/patchgate/patchgate/appliance/logring"
	"github.com/patchgate/patchgate/conf"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the appliance daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), path)
		},
	}
	configFlag(cmd, &path, "")
	return cmd
}

func serve(ctx context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		var ce *conf.Error
		if errors.As(err, &ce) {
			return fmt.Errorf("serve: %s is not valid; nothing was started:\n%w", path, err)
		}
		return fmt.Errorf("serve: %w", err)
	}
	ring := logring.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}), 200)
	log := slog.New(ring)
	// The effective config goes to the journal only, not to the status page's recent log.
	log.Info("config loaded", "file", path, logring.Private("effective", cfg.Redacted()))

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sys, err := appliance.New(ctx, cfg, appliance.Options{
		Build:      build(),
		Logger:     log,
		LogRing:    ring,
		ConfigPath: path,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer sys.Close()
	if err := sys.Run(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

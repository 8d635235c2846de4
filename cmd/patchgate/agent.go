package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/agent"
)

func newAgentCmd() *cobra.Command {
	var path, level string
	var once bool
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the endpoint agent: enrol, report facts, fetch, verify and install offered patches",
		Long: `Run the endpoint agent against the appliance named in its config file.

The agent enrols once with the token in token_file, then checks in, downloads the
deployments the appliance offers through it, verifies every target with TUF against the
upstream root listed under repos (never trusting the appliance for integrity), runs the
install command when the offer allows installing, and reports the outcome. See the
agent package's documentation for the config file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), path, level, once)
		},
	}
	cmd.Flags().StringVar(&path, "config", "/etc/patchgate-agent/agent.yaml", "agent config file")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().BoolVar(&once, "once", false, "do one check-in round and exit")
	return cmd
}

func runAgent(ctx context.Context, path, level string, once bool) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("agent: --log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if once {
		next, err := a.Cycle(ctx)
		if err == nil {
			log.Info("round done", "next_poll", next.String())
		}
		return err
	}
	return a.Run(ctx)
}

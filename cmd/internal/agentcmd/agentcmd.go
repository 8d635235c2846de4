// Package agentcmd is the endpoint agent's command line, shared by `patchgate agent`
// and the agent-only binary `patchgate-agent` (the one built for Windows and macOS,
// where the appliance's Linux-only parts do not build).
package agentcmd

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

// Command returns the agent command; use is its usage line ("agent" or the binary's
// name), version what the agent reports.
func Command(use, version string) *cobra.Command {
	var path, level, logFile string
	var once bool
	cmd := &cobra.Command{
		Use:   use + " --config FILE",
		Short: "Run the endpoint agent: enrol, report facts, fetch, verify and install offered patches",
		Long: `Run the endpoint agent against the appliance named in its config file.

The agent enrols once with the token in token_file, then checks in, downloads the
deployments the appliance offers through it, verifies every target with TUF against the
upstream root listed under repos (never trusting the appliance for integrity), runs the
install instructions signed with each target (only programs allow_commands lists) when
the offer allows installing, and reports the outcome. See agent/README.md for the
config file.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd.Context(), path, level, logFile, version, once)
		},
	}
	cmd.Flags().StringVar(&path, "config", defaultConfig(), "agent config file")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().BoolVar(&once, "once", false, "do one check-in round and exit")
	cmd.Flags().StringVar(&logFile, "log-file", "", "append the log to this file (0600) instead of stderr, e.g. under a Windows service")
	return cmd
}

func defaultConfig() string {
	if d := os.Getenv("ProgramData"); d != "" { // Windows
		return d + `\Patchgate\agent.yaml`
	}
	return "/etc/patchgate-agent/agent.yaml"
}

func run(ctx context.Context, path, level, logFile, version string, once bool) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("agent: --log-level: %w", err)
	}
	out := os.Stderr
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("agent: --log-file: %w", err)
		}
		defer f.Close()
		out = f
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: lv}))
	cfg, err := agent.LoadConfig(path)
	if err != nil {
		return err
	}
	// The config and the roots it trusts choose what runs as root/SYSTEM: refuse them
	// when others may write them.
	if err := agent.CheckConfigPermissions(path, cfg); err != nil {
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

package main

import (
	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/cmd/internal/agentcmd"
)

func newAgentCmd() *cobra.Command { return agentcmd.Command("agent", version) }

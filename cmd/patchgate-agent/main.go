// Command patchgate-agent is the endpoint agent alone, for Linux, Windows and macOS
// endpoints: the same as `patchgate agent`, without the appliance (whose packet
// capture and nftables parts build only on Linux). `make cross` builds it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/patchgate/patchgate/cmd/internal/agentcmd"
)

// Set by the linker: -X main.version=...
var version = "dev"

func main() {
	if err := agentcmd.Command("patchgate-agent", version).ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "patchgate-agent:", err)
		os.Exit(1)
	}
}

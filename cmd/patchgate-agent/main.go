// Command patchgate-agent is the endpoint agent alone, for Linux, Windows and macOS
// endpoints: the same as `patchgate agent`, without the appliance (whose packet
// capture and nftables parts build only on Linux). `make cross` builds it; started by
// the Windows service manager it runs as a service (service_windows.go).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/patchgate/patchgate/cmd/internal/agentcmd"
)

// Set by the linker: -X main.version=...
var version = "dev"

// runService runs the command under the OS's service manager when the process was
// started by one; it reports whether it did. Nil where there is none to talk to.
var runService func(run func(ctx context.Context) error) (bool, error)

func main() {
	cmd := agentcmd.Command("patchgate-agent", version)
	cmd.AddCommand(serviceCommand())
	if runService != nil {
		ran, err := runService(cmd.ExecuteContext)
		if ran {
			if err != nil {
				os.Exit(1)
			}
			return
		}
	}
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "patchgate-agent:", err)
		os.Exit(1)
	}
}

// Command patchgate is the Patchgate appliance: one binary with subcommands for the
// daemon (serve), its config check, and the tools around it.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "patchgate:", err)
		os.Exit(exitCode(err))
	}
}

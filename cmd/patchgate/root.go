package main

import (
	"errors"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/appliance"
)

// Set by the linker: -X main.version=... -X main.commit=... -X main.date=...
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func build() appliance.Build {
	return appliance.Build{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "patchgate",
		Short:         "Patchgate keeps a small healthcare site's devices patched, verified and on record",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newCheckConfigCmd(),
		newVersionCmd(),
		newAuditCmd(),
		newImageCmd(),
		newGatewayCmd(),
		newTUFCmd(),
		newAgentCmd(),
		newRolloutCmd(),
		newAdvisoryCmd(),
		newScanCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newLoginCmd(),
	)
	return root
}

// exitError carries a specific exit code (check-config uses 1 for a bad file).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// Package agenttest lets a test binary stand in for an agent's install command, for
// the tests of agent and the end-to-end tests that run agents against an appliance.
//
// A test points the agent's install command at its own binary,
//
//	[]string{os.Args[0], "-test.run=^TestHelper$", "--", "{file}", more...}
//
// (signed with the target as its install instructions, os.Args[0] in allow_commands)
// and TestHelper, skipped unless the test's environment marks the run, calls
// InstallArgs, records what it was given and exits with the code it wants.
package agenttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// InstallArgs returns the arguments after "--" (the file to install first) and the
// sha256 of that file in hex. When the file cannot be read it says so on stderr and
// exits with code 3, as a failed installer would.
func InstallArgs() (args []string, sum string) {
	args = os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read", args[0], err)
		os.Exit(3)
	}
	h := sha256.Sum256(data)
	return args, hex.EncodeToString(h[:])
}

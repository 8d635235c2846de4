package agentapi

import (
	"errors"
	"fmt"
)

// Validate checks facts against the bounds of the contract: a hostname of 1-253 bytes,
// other facts and package names and versions of at most 200, at most 5000 packages.
// The appliance refuses facts that fail it; the error names the field.
func (f *Facts) Validate() error {
	if f.Hostname == "" || len(f.Hostname) > 253 {
		return errors.New("hostname: must be 1-253 characters")
	}
	for _, s := range []string{f.OS, f.OSVersion, f.OSBuild, f.Arch, f.AgentVersion, f.Serial} {
		if len(s) > 200 {
			return errors.New("a fact is longer than 200 characters")
		}
	}
	if len(f.Packages) > 5000 {
		return fmt.Errorf("packages: at most 5000, got %d", len(f.Packages))
	}
	for i, p := range f.Packages {
		if p.Name == "" || len(p.Name) > 200 || len(p.Version) > 200 {
			return fmt.Errorf("packages[%d]: name must be 1-200 and version at most 200 characters", i)
		}
	}
	return nil
}

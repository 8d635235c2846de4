package agentpkg

import _ "embed"

// The files `patchgate-agent service install` writes (cmd/patchgate-agent): the same
// ones the .deb/.rpm carry, so the two ways of installing do not drift apart.
var (
	//go:embed patchgate-agent.service
	Unit string
	//go:embed com.patchgate.agent.plist
	Plist string
	//go:embed agent.yaml
	Config string
)

// Package agent is the endpoint side of Patchgate: a small program for Linux, Windows
// and macOS endpoints that enrols with the appliance, reports the device's inventory
// facts, polls for the deployments offered to it, downloads their targets through the
// appliance (honouring Retry-After, resuming with Range), verifies every target with
// TUF against the upstream root the site trusts — never trusting the appliance for
// integrity — runs the configured install command when the offer allows installing,
// and reports the outcome with the exit code and the tail of the installer's output.
//
// The wire protocol is the appliance's agent API v1, written down in
// appliance/rollout/README.md; this package does not import the appliance.
package agent

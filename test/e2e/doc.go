// Package e2e runs Patchgate end to end on loopback: a real TUF upstream, the whole
// appliance built from the dev config, and real endpoint agents.
package e2e

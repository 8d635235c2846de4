// Package config is Patchgate's root configuration: one typed Config loaded from strict
// YAML, its defaults in one place (Default, in defaults.go), and a Validate method on every
// section. Every problem found is reported at once, one line each, as
//
//	patchgate.yaml:42: rollout.rings[1].success_percent: must be 1-100, got 150
//
// so that `patchgate check-config` can run as systemd's ExecStartPre and tell an admin
// exactly what to fix. Secrets are of type Secret and print as ********.
//
// Adding a section: declare its type in a file of its own (resolver.go, cache.go, ...)
// with a Validate(key string, ps *Problems) method, add a field to Config, its defaults to
// Default, and its Validate call to Config.Validate.
package config

// Package config is Patchgate's root configuration: one typed Config loaded from strict
// YAML. It assembles the sections; each subsystem declares its own section type (with
// yaml tags), its defaults (DefaultSection) and its Validate in its own package, in
// section.go (appliance/resolver, appliance/gateway, cache, tuf, ...), written with the
// conf leaf. Only the root's own sections (log, state, shutdown, the admin and
// distribution listeners) are declared here, in server.go. Every problem found is
// reported at once, one line each, as
//
//	patchgate.yaml:42: rollout.rings[1].success_percent: must be 1-100, got 150
//
// so that `patchgate check-config` can run as systemd's ExecStartPre and tell an admin
// exactly what to fix. Secrets are of type conf.Secret and print as ********.
//
// Adding a key to a subsystem's section touches only that subsystem's package (and the
// documentation in configs/patchgate.yaml). Adding a section: declare it in the
// subsystem's section.go, add a field to Config, its DefaultSection to Default, and its
// Validate call to Config.Validate, handing it what it refers to outside itself (the
// segment table, another section's names) so the subsystem never imports this package.
package config

// Package selfupdate keeps the appliance itself up to date. The daemon side (Service)
// finds newer appliance versions among the verified targets of one upstream TUF
// repository, stages their files in the verified cache, shows the installed, pending and
// available versions, and turns an admin's install or rollback into a request file. The
// root side (Apply, run by `patchgate image apply` from a systemd path unit) takes the
// request, verifies the version's files against TUF again itself, from a trusted root
// the daemon cannot write, and installs them into the other A/B slot with abupdate.
//
// The daemon runs unprivileged and never writes a slot or the ESP; the installer never
// trusts the daemon's word for a byte.
package selfupdate

// Package fingerprint tells what a device is from the facts netscan
// gathered about it.
//
// Vendor looks a MAC address up in the IEEE registry (MA-L, MA-M and MA-S
// blocks), embedded as a compact table generated from Debian's ieee-data by
// `go generate` (see oui.go); a locally administered ("randomised") MAC has
// no vendor. A Classifier applies rules — a YAML file of the project's own,
// embedded as rules.yaml, or one given by the site — mapping evidence to a
// device type (printer, label printer, barcode/handheld scanner, mobile
// handheld, pharmacy automation, POS terminal, workstation, server, network
// device, camera, unknown) and to vendor, model, firmware and OS, each with
// a confidence and the evidence that decided it.
package fingerprint

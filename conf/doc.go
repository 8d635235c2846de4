// Package conf holds what every config section is written with: the value types of
// patchgate.yaml (durations, byte sizes, secrets, prefixes) and the problems a section's
// Validate reports, each at a dotted key that the loader turns into FILE:LINE. It imports
// nothing of the project's, so any package may describe its own config section with it.
package conf

//go:build !unix && !windows

package agent

// checkWritable has nothing to read where there are neither Unix modes nor Windows ACLs.
func checkWritable(string) error { return nil }

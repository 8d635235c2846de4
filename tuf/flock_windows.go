package tuf

import (
	"os"

	"golang.org/x/sys/windows"
)

// flock takes an exclusive lock on f, waiting for it (the agent builds for Windows
// and imports this package; publishing repositories is done on the appliance).
func flock(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol)
}

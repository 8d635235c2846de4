//go:build unix

package agent

import (
	"fmt"
	"os"
	"syscall"
)

// checkWritable refuses p when its mode lets its group or every user write it, or
// when its owner is neither root nor the agent's own user (an owner may chmod).
func checkWritable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if prob := modeProblem(fi.Mode()); prob != "" {
		return fmt.Errorf("%s %s: it decides what the agent runs as root; fix with: chmod go-w %q", p, prob, p)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, neither root nor the agent's user: fix with: chown root %q", p, st.Uid, p)
	}
	return nil
}

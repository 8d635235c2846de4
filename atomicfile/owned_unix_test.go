//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteOwned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "result.json")
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // root can give the file away, as the appliance's installer does
		uid, gid = 65534, 65534
	}
	if err := WriteOwned(path, []byte("{}"), 0o600, uid, gid); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}

// Package selfupdatetest publishes stand-in appliance versions into a test TUF
// repository (tuf/tuftest) the way make image-publish publishes real ones, for the tests
// of appliance/selfupdate and of the appliance that wires it.
package selfupdatetest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/image/abupdate"
	"github.com/patchgate/patchgate/image/abupdate/abupdatetest"
	"github.com/patchgate/patchgate/tuf/tuftest"
)

// Bundle is one appliance version's files as delivered.
type Bundle struct {
	Version  string
	UUID     string // its root filesystem's UUID
	Root     []byte // gzip-compressed root image (abupdatetest.Root)
	UKI      []byte // booting that root (abupdatetest.UKI)
	Manifest abupdate.Manifest
}

// NewBundle makes version's bundle with a root of the given filesystem UUID.
func NewBundle(t testing.TB, version, uuid string) Bundle {
	t.Helper()
	raw := abupdatetest.Root(uuid)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	uki := abupdatetest.UKI("root=UUID=" + uuid + " ro console=ttyS0")
	b := Bundle{Version: version, UUID: uuid, Root: gz.Bytes(), UKI: uki}
	b.Manifest = abupdate.Manifest{Version: version,
		Root: abupdate.File{Name: "patchgate-" + version + ".root.img.gz", Length: int64(len(b.Root)), SHA256: Sum(b.Root),
			RawLength: int64(len(raw)), RawSHA256: Sum(raw)},
		UKI: abupdate.File{Name: "patchgate_" + version + ".efi", Length: int64(len(uki)), SHA256: Sum(uki)}}
	return b
}

// Sum is the lowercase hex SHA-256 of b.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Publish adds b's three files under prefix to repo's top-level targets, each with the
// manifest as custom metadata, as make image-publish does. The caller publishes.
func Publish(t testing.TB, repo *tuftest.Repo, prefix string, b Bundle) {
	t.Helper()
	custom, err := json.Marshal(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	repo.AddTargetContent("targets", prefix+b.Manifest.Root.Name, tuftest.Bytes(b.Root), custom)
	repo.AddTargetContent("targets", prefix+b.Manifest.UKI.Name, tuftest.Bytes(b.UKI), custom)
	repo.AddTargetContent("targets", prefix+"patchgate-"+b.Version+".update.json", tuftest.Bytes(custom), custom)
}

// Disk lays out under dir what abupdate installs onto: the root slots dir/root-a (the
// running version 1.0, filesystem UUID running) and dir/root-b (the older 0.9, UUID
// old), and the ESP dir/esp with a UKI booting each. It returns the ESP and the slots.
func Disk(t testing.TB, dir, running, old string) (esp string, slots [2]string) {
	t.Helper()
	esp = filepath.Join(dir, "esp")
	slots = [2]string{filepath.Join(dir, "root-a"), filepath.Join(dir, "root-b")}
	for p, b := range map[string][]byte{
		slots[0]: abupdatetest.Root(running),
		slots[1]: abupdatetest.Root(old),
		filepath.Join(esp, "EFI", "Linux", "patchgate_1.0.efi"): abupdatetest.UKI("root=UUID=" + running),
		filepath.Join(esp, "EFI", "Linux", "patchgate_0.9.efi"): abupdatetest.UKI("root=UUID=" + old),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return esp, slots
}

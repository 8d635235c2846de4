package cache_test

import (
	"bytes"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/patchgate/patchgate/tuf/tuftest"
)

// TestStockClientThroughCache points go-tuf's own updater at the appliance
// as its mirror: it verifies the upstream's metadata (served byte for byte)
// against the upstream root, follows a root rotation and a delegation, and
// downloads targets through the cache.
func TestStockClientThroughCache(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("os/patch-1.bin", []byte("patch one"))
	repo.Delegate("targets", "printers", []string{"printers/*"}, false)
	repo.AddTargetContent("printers", "printers/fw.bin", tuftest.Bytes("printer firmware"), nil)
	repo.Publish()
	repo.RotateKeys("snapshot") // root v2: the client must walk 2.root.json
	e := newEnv(t, repo)
	e.refresh(t)

	for _, tc := range []struct{ path, want string }{
		{"os/patch-1.bin", "patch one"},
		{"printers/fw.bin", "printer firmware"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := config.New(e.srv.URL+"/repos/demo/metadata", repo.Root())
			if err != nil {
				t.Fatal(err)
			}
			cfg.LocalMetadataDir = filepath.Join(dir, "metadata")
			cfg.LocalTargetsDir = filepath.Join(dir, "targets")
			cfg.RemoteTargetsURL = e.srv.URL + "/repos/demo/targets"
			if err := cfg.SetDefaultFetcherHTTPClient(&http.Client{}); err != nil {
				t.Fatal(err)
			}
			up, err := updater.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := up.Refresh(); err != nil {
				t.Fatalf("stock client Refresh through the cache: %v", err)
			}
			if v := up.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
				t.Errorf("client root version %d, want 2", v)
			}
			ti, err := up.GetTargetInfo(tc.path)
			if err != nil {
				t.Fatalf("GetTargetInfo: %v", err)
			}
			_, data, err := up.DownloadTarget(ti, "", "")
			if err != nil {
				t.Fatalf("DownloadTarget through the cache: %v", err)
			}
			if !bytes.Equal(data, []byte(tc.want)) {
				t.Errorf("downloaded %q, want %q", data, tc.want)
			}
		})
	}
}

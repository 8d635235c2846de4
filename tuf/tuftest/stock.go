package tuftest

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// StockFetch is what a stock go-tuf v2 updater, trusting root and keeping its state in
// a fresh directory, gets of path from the repository at metadataURL and targetsURL:
// the target's signed info and its bytes. hc, when not nil, is its HTTP client (to send
// a device's credential). Any refusal fails the test.
func StockFetch(t testing.TB, hc *http.Client, metadataURL, targetsURL string, root []byte, path string) (*metadata.TargetFiles, []byte) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.New(metadataURL, root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = filepath.Join(dir, "metadata"), filepath.Join(dir, "targets")
	cfg.RemoteTargetsURL = targetsURL
	if hc != nil {
		if err := cfg.SetDefaultFetcherHTTPClient(hc); err != nil {
			t.Fatal(err)
		}
	}
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("stock updater Refresh: %v", err)
	}
	ti, err := up.GetTargetInfo(path)
	if err != nil {
		t.Fatalf("stock updater GetTargetInfo(%s): %v", path, err)
	}
	_, data, err := up.DownloadTarget(ti, "", "")
	if err != nil {
		t.Fatalf("stock updater DownloadTarget(%s): %v", path, err)
	}
	return ti, data
}

package tuf_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/patchgate/patchgate/tuf"
)

// stockClient is a stock go-tuf updater's state between refreshes: its own
// directory, pinned to root version 1, judging expiry at the times it is given.
type stockClient struct {
	t    *testing.T
	srv  *httptest.Server
	root []byte
	dir  string
}

func newStockClient(t *testing.T, p *tuf.Publisher) *stockClient {
	t.Helper()
	root, err := os.ReadFile(p.RootPath())
	if err != nil {
		t.Fatal(err)
	}
	return &stockClient{t: t, srv: serveRepo(t, p), root: root, dir: t.TempDir()}
}

// refresh runs a stock updater (as a device would) at reference time now and,
// when path is set, downloads that target.
func (c *stockClient) refresh(now time.Time, path string) (string, error) {
	cfg, err := config.New(c.srv.URL+"/metadata", c.root)
	if err != nil {
		return "", err
	}
	cfg.LocalMetadataDir = filepath.Join(c.dir, "metadata")
	cfg.LocalTargetsDir = filepath.Join(c.dir, "targets")
	cfg.RemoteTargetsURL = c.srv.URL + "/targets"
	if err := cfg.SetDefaultFetcherHTTPClient(&http.Client{}); err != nil {
		return "", err
	}
	up, err := updater.New(cfg)
	if err != nil {
		return "", err
	}
	// go-tuf v2.4.2's config has no clock: the updater's own reference time.
	up.UnsafeSetRefTime(now)
	if err := up.Refresh(); err != nil {
		return "", err
	}
	if path == "" {
		return "", nil
	}
	ti, err := up.GetTargetInfo(path)
	if err != nil {
		return "", err
	}
	_, data, err := up.DownloadTarget(ti, filepath.Join(c.dir, "dl"), "")
	return string(data), err
}

// holders makes n root key holders, each with a key file in a directory of
// their own ("another machine"), and returns the key files and public keys.
func holders(t *testing.T, n int) (files []string, pubs [][]byte) {
	t.Helper()
	for i := range n {
		f := filepath.Join(t.TempDir(), "root.pem")
		pub, id, err := tuf.GenerateRootKey(f)
		if err != nil || len(id) != 64 {
			t.Fatalf("GenerateRootKey %d: %q, %v", i, id, err)
		}
		if _, _, err := tuf.GenerateRootKey(f); err == nil {
			t.Fatal("GenerateRootKey over an existing file: no error")
		}
		files, pubs = append(files, f), append(pubs, pub)
	}
	return files, pubs
}

// signBy has the holders with key files keys sign proposal, each on their own copy.
func signBy(t *testing.T, proposal []byte, keys ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, k := range keys {
		signed, _, _, err := tuf.SignRoot(proposal, k)
		if err != nil {
			t.Fatalf("SignRoot %s: %v", k, err)
		}
		out = append(out, signed)
	}
	return out
}

func TestRootCeremony(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	keys, pubs := holders(t, 3)
	dir := t.TempDir()

	// Version 1: threshold 2 of 3, no root key on the appliance.
	p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{RootPublicKeys: pubs, RootThreshold: 2, Now: clock})
	if err != nil {
		t.Fatalf("InitRepository: %v", err)
	}
	if rk, _ := filepath.Glob(filepath.Join(dir, "root-keys", "*")); len(rk) != 0 {
		t.Errorf("root keys on the appliance: %v", rk)
	}
	proposal, err := p.PendingRoot()
	if err != nil || proposal == nil {
		t.Fatalf("PendingRoot: %v", err)
	}
	if _, err := p.ImportRoot(ctx, signBy(t, proposal, keys[0])...); !errors.Is(err, tuf.ErrThreshold) {
		t.Fatalf("ImportRoot with 1 of 2 signatures: err = %v, want ErrThreshold", err)
	}
	if v, err := p.ImportRoot(ctx, signBy(t, proposal, keys[0], keys[2])...); err != nil || v != 1 {
		t.Fatalf("ImportRoot: v%d, %v", v, err)
	}
	if _, err := p.Add(ctx, writeTemp(t, "firmware 1"), "fw.bin", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	client := newStockClient(t, p)
	if got, err := client.refresh(now, "fw.bin"); err != nil || got != "firmware 1" {
		t.Fatalf("stock client at v1: %q, %v", got, err)
	}

	ceremony := func(ch tuf.RootChange, signers ...string) (int64, error) {
		t.Helper()
		proposal, err := p.ExportRoot(ch)
		if err != nil {
			t.Fatalf("ExportRoot: %v", err)
		}
		return p.ImportRoot(ctx, signBy(t, proposal, signers...)...)
	}

	// Rotate the online keys (a routine rotation).
	now = now.Add(24 * time.Hour)
	if v, err := ceremony(tuf.RootChange{RotateOnline: true}, keys[1], keys[2]); err != nil || v != 2 {
		t.Fatalf("online key rotation: v%d, %v", v, err)
	}
	if got, err := client.refresh(now, "fw.bin"); err != nil || got != "firmware 1" {
		t.Fatalf("stock client across the online key rotation: %q, %v", got, err)
	}

	// Lose the timestamp key: re-signing fails until the ceremony replaces it.
	tsKeys := onlineKeyFiles(t, dir)
	for _, f := range tsKeys {
		os.Remove(f)
	}
	if _, err := p.Resign(ctx, true); err == nil || !strings.Contains(err.Error(), "missing key") {
		t.Fatalf("Resign without the online keys: err = %v, want missing key", err)
	}
	now = now.Add(time.Hour)
	if v, err := ceremony(tuf.RootChange{RotateOnline: true}, keys[0], keys[1]); err != nil || v != 3 {
		t.Fatalf("recovery from lost online keys: v%d, %v", v, err)
	}
	if _, err := p.Resign(ctx, false); err != nil {
		t.Fatalf("Resign after recovery: %v", err)
	}
	if got, err := client.refresh(now, "fw.bin"); err != nil || got != "firmware 1" {
		t.Fatalf("stock client after recovery: %q, %v", got, err)
	}

	// Replace root key 0 by a new one: the old root's threshold must sign too.
	newKeys, newPubs := holders(t, 1)
	change := tuf.RootChange{AddKeys: newPubs, RemoveKeys: []string{keyID(t, pubs[0])[:12]}}
	proposal, err = p.ExportRoot(change)
	if err != nil {
		t.Fatal(err)
	}
	// keys[1] and the new key meet the new root's threshold, not the old one's.
	if _, err := p.ImportRoot(ctx, signBy(t, proposal, keys[1], newKeys[0])...); !errors.Is(err, tuf.ErrThreshold) || !strings.Contains(err.Error(), "current root") {
		t.Fatalf("ImportRoot without the old root's threshold: err = %v, want ErrThreshold of the current root", err)
	}
	stale := signBy(t, proposal, keys[0])
	now = now.Add(time.Minute)                      // a later export has a later expiry
	if _, err := p.ExportRoot(change); err != nil { // exported again: the old copies no longer match
		t.Fatal(err)
	}
	if _, err := p.ImportRoot(ctx, stale...); err == nil || !strings.Contains(err.Error(), "not the pending root") {
		t.Fatalf("ImportRoot of a superseded proposal: err = %v", err)
	}
	proposal, _ = p.PendingRoot()
	if v, err := p.ImportRoot(ctx, signBy(t, proposal, keys[0], keys[1], newKeys[0])...); err != nil || v != 4 {
		t.Fatalf("root key replacement: v%d, %v", v, err)
	}
	if got, err := client.refresh(now, "fw.bin"); err != nil || got != "firmware 1" {
		t.Fatalf("stock client after the root key replacement: %q, %v", got, err)
	}
	if _, err := p.ImportRoot(ctx, stale...); err == nil {
		t.Error("ImportRoot with nothing pending: no error")
	}
}

// onlineKeyFiles lists the appliance's online key files other than targets'.
func onlineKeyFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(files) < 3 {
		t.Fatalf("%d online keys, want at least 3", len(files))
	}
	targets := targetsKeyID(t, dir)
	var out []string
	for _, f := range files {
		if !strings.HasPrefix(filepath.Base(f), targets) {
			out = append(out, f)
		}
	}
	return out
}

func targetsKeyID(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "repository", "metadata", "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), `"targets": {`)
	j := strings.Index(string(data)[i:], `"keyids": [`)
	rest := string(data)[i+j+len(`"keyids": [`):]
	return strings.Trim(strings.TrimSpace(rest[:strings.Index(rest, "]")]), `"`)
}

func keyID(t *testing.T, pub []byte) string {
	t.Helper()
	k, err := tuf.ParsePublicKey(pub, "pub")
	if err != nil {
		t.Fatal(err)
	}
	id, err := k.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParsePublicKeyRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not json", "{"},
		{"wrong type", `{"keytype":"rsa","scheme":"rsassa-pss-sha256","keyval":{"public":"00"}}`},
		{"short key", `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"abcd"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tuf.ParsePublicKey([]byte(tc.in), "k.json"); err == nil || !strings.Contains(err.Error(), "k.json") {
				t.Errorf("err = %v, want an error naming the file", err)
			}
		})
	}
}

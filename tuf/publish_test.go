package tuf_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/patchgate/patchgate/tuf"
)

// serveRepo serves a publisher's repository directory over HTTP.
func serveRepo(t *testing.T, p *tuf.Publisher) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metadata/", http.StripPrefix("/metadata/", http.FileServer(http.Dir(p.MetadataDir()))))
	mux.Handle("/targets/", http.StripPrefix("/targets/", http.FileServer(http.Dir(p.TargetsDir()))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// stockDownload fetches a target with go-tuf's own updater, pinned to the
// repository's first root, keeping client state in dir.
func stockDownload(t *testing.T, srv *httptest.Server, root []byte, dir, path string) (string, error) {
	t.Helper()
	c := &stockClient{t: t, srv: srv, root: root, dir: dir}
	return c.refresh(time.Now(), path)
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublisherReadableByStockClient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{})
	if err != nil {
		t.Fatalf("InitRepository: %v", err)
	}
	if _, err := p.Add(ctx, writeTemp(t, "printer firmware 2.1"), "printers/fw-2.1.bin", []byte(`{"vendor":"acme"}`)); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if _, err := p.Add(ctx, writeTemp(t, "pos patch"), "pos.bin", nil); err != nil {
		t.Fatalf("Add: %v", err)
	}
	pub, err := p.Publish(ctx)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if pub.Targets != 2 || pub.Snapshot != 2 || pub.Timestamp != 2 {
		t.Errorf("Publish = %+v, want version 2 of each (init published 1)", pub)
	}
	srv := serveRepo(t, p)
	root, err := os.ReadFile(p.RootPath())
	if err != nil {
		t.Fatal(err)
	}
	client := t.TempDir()
	got, err := stockDownload(t, srv, root, client, "printers/fw-2.1.bin")
	if err != nil || got != "printer firmware 2.1" {
		t.Fatalf("stock client: %q, %v", got, err)
	}

	// Remove, rotate the timestamp key, publish: the same client follows.
	if err := p.Remove("pos.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Rotate(ctx, tuf.RotateOptions{Role: "timestamp"}); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if _, err := stockDownload(t, srv, root, client, "pos.bin"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("removed target: err = %v, want not found", err)
	}
	if got, err := stockDownload(t, srv, root, client, "printers/fw-2.1.bin"); err != nil || got != "printer firmware 2.1" {
		t.Errorf("after rotation: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(p.MetadataDir(), "2.root.json")); err != nil {
		t.Errorf("rotation wrote no 2.root.json: %v", err)
	}
}

// TestPublisherListsTargetsLength: the snapshot gives targets.json's length, so that a
// mirror accepts a targets role past its 5 MB default, and keeps giving it when the
// online roles are signed again.
func TestPublisherListsTargetsLength(t *testing.T) {
	ctx := context.Background()
	p, err := tuf.InitRepository(ctx, t.TempDir(), tuf.InitOptions{})
	if err != nil {
		t.Fatalf("InitRepository: %v", err)
	}
	if _, err := p.Add(ctx, writeTemp(t, "label printer firmware"), "printers/fw.bin", nil); err != nil {
		t.Fatalf("Add: %v", err)
	}
	pub, err := p.Publish(ctx)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	check := func(when string) {
		t.Helper()
		snap, err := metadata.Snapshot().FromFile(filepath.Join(p.MetadataDir(), "snapshot.json"))
		if err != nil {
			t.Fatal(err)
		}
		tm := snap.Signed.Meta["targets.json"]
		file, err := os.ReadFile(filepath.Join(p.MetadataDir(), fmt.Sprintf("%d.targets.json", pub.Targets)))
		if err != nil {
			t.Fatal(err)
		}
		if tm == nil || tm.Version != pub.Targets || tm.Length != int64(len(file)) {
			t.Errorf("%s: snapshot lists targets.json as %+v, want version %d and length %d", when, tm, pub.Targets, len(file))
		}
	}
	check("after publish")
	if _, err := p.Resign(ctx, true); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	check("after the snapshot is signed again")
}

func TestPublisherMisuse(t *testing.T) {
	ctx := context.Background()
	t.Run("missing key", func(t *testing.T) {
		dir := t.TempDir()
		p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
		for _, k := range keys {
			os.Remove(k)
		}
		_, err = p.Publish(ctx)
		if err == nil || !strings.Contains(err.Error(), "missing key") {
			t.Errorf("Publish without keys: err = %v, want a missing key error", err)
		}
	})
	t.Run("threshold not met", func(t *testing.T) {
		dir := t.TempDir()
		p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{RootKeys: 2})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := filepath.Glob(filepath.Join(dir, "root-keys", "*.pem"))
		if len(keys) != 2 {
			t.Fatalf("%d root keys, want 2", len(keys))
		}
		os.Remove(keys[0])
		_, err = p.Rotate(ctx, tuf.RotateOptions{Role: "targets"})
		if !errors.Is(err, tuf.ErrThreshold) || !strings.Contains(err.Error(), "have 1 of the 2") {
			t.Errorf("Rotate with 1 of 2 root keys: err = %v, want threshold not met", err)
		}
	})
	t.Run("expired root", func(t *testing.T) {
		dir := t.TempDir()
		now := time.Now()
		clock := func() time.Time { return now }
		p, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{RootExpires: 48 * time.Hour, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(72 * time.Hour)
		_, err = p.Publish(ctx)
		if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "rotate --role root") {
			t.Fatalf("Publish with an expired root: err = %v, want expired with the way out", err)
		}
		if _, err := p.Rotate(ctx, tuf.RotateOptions{Role: "root", KeepKeys: true}); err != nil {
			t.Fatalf("renewing root: %v", err)
		}
		if _, err := p.Publish(ctx); err != nil {
			t.Errorf("Publish after renewing root: %v", err)
		}
	})
	t.Run("init twice", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := tuf.InitRepository(ctx, dir, tuf.InitOptions{}); err == nil {
			t.Error("second init succeeded")
		}
	})
	t.Run("bad inputs", func(t *testing.T) {
		p, err := tuf.InitRepository(ctx, t.TempDir(), tuf.InitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f := writeTemp(t, "x")
		for _, tc := range []struct{ name, path, custom string }{
			{"dot-dot", "../x", ""}, {"empty", "", ""}, {"bad custom", "x.bin", "{"},
		} {
			var custom []byte
			if tc.custom != "" {
				custom = []byte(tc.custom)
			}
			if _, err := p.Add(ctx, f, tc.path, custom); err == nil {
				t.Errorf("Add %s: no error", tc.name)
			}
		}
		if err := p.Remove("nope.bin"); err == nil {
			t.Error("Remove of an unknown target: no error")
		}
		if _, err := tuf.OpenPublisher(t.TempDir(), tuf.PublisherOptions{}); err == nil {
			t.Error("OpenPublisher on an empty directory: no error")
		}
	})
}

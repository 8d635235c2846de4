package supply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/patchgate/patchgate/appliance/supply/supplytest"
	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/clock/clocktest"
	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/health"
)

// Each kind of source stages what its vendor offers, verified by the vendor's own means,
// with its provenance; a second check stages nothing new.
func TestSourcesStageVerifiedFiles(t *testing.T) {
	key := newKey(t, 0)
	pub := armoredPublic(t, key)
	v := newVendor(t)
	tool := []byte("tool v1 bytes")
	v.Put("/tool/tool-1.0.msi", tool)
	v.PutSums(t, "/sums", nil, map[string][]byte{"app-1.0.tar.gz": []byte("app one"), "readme.txt": []byte("skip me")})
	v.PutSums(t, "/signed", key, map[string][]byte{"agent-2.0.zip": []byte("agent two")})
	v.Put("/pgp/fw-3.bin", []byte("firmware three"))
	v.Put("/pgp/fw-3.bin.asc", detachSign(t, key, []byte("firmware three")))
	v.PutDebian(t, key, supplytest.DebArchive{Deb: []byte("!<arch>\nfake deb")})
	dir := t.TempDir()
	media := []byte("offline media")
	os.WriteFile(filepath.Join(dir, "media.iso"), media, 0o600)
	os.WriteFile(filepath.Join(dir, "MANIFEST"), fmt.Appendf(nil, "# vendor media\n%s %d media.iso\n", sum(media), len(media)), 0o600)

	tests := []struct {
		src      Source
		name     string
		verified string
	}{
		{Source{Name: "pinned", Kind: KindURL, URL: v.URL("/tool/tool-1.0.msi"), SHA256: sum(tool)}, "tool-1.0.msi", "sha256 pinned"},
		{Source{Name: "sums", Kind: KindURL, ChecksumsURL: v.URL("/sums/SHA256SUMS"), Files: []string{"app-*.tar.gz"}}, "app-1.0.tar.gz", "listed in"},
		{Source{Name: "signed-sums", Kind: KindOpenPGP, ChecksumsURL: v.URL("/signed/SHA256SUMS"), Key: pub}, "agent-2.0.zip", "signed by OpenPGP key " + keyID(key.PrimaryKey.KeyId)},
		{Source{Name: "pgp", Kind: KindOpenPGP, URL: v.URL("/pgp/fw-3.bin"), Key: pub}, "fw-3.bin", "detached OpenPGP signature by key"},
		{Source{Name: "deb", Kind: KindDebian, URL: v.URL("/debian"), Key: pub, Suite: "stable", Components: []string{"main"}, Architectures: []string{"amd64"}, Packages: []string{"hel*"}}, "hello_1.0_amd64.deb", "InRelease signed by OpenPGP key"},
		{Source{Name: "usb", Kind: KindImport, Dir: dir}, "media.iso", "listed in MANIFEST"},
	}
	for _, tc := range tests {
		t.Run(tc.src.Name, func(t *testing.T) {
			ev := &events{}
			s := openService(t, clock.NewFake(t0), ev, tc.src)
			st, err := s.Check(context.Background(), tc.src.Name)
			if err != nil || st.Result != "ok" {
				t.Fatalf("Check = %+v, %v; want ok", st, err)
			}
			cs, err := s.Candidates(context.Background(), "")
			if err != nil || len(cs) != 1 {
				t.Fatalf("Candidates = %+v, %v; want one", cs, err)
			}
			c := cs[0]
			if c.Name != tc.name || !strings.Contains(c.Verification, tc.verified) || c.Source != tc.src.Name || !c.FetchedAt.Equal(t0) || len(c.SHA512) != 128 {
				t.Errorf("candidate = %+v, want %s verified by %q", c, tc.name, tc.verified)
			}
			staged, err := os.ReadFile(s.Path(c.SHA256))
			if err != nil || sum(staged) != c.SHA256 || int64(len(staged)) != c.Size {
				t.Errorf("staged bytes: %v, sha256 %s size %d; want %s size %d", err, sum(staged), len(staged), c.SHA256, c.Size)
			}
			if len(ev.staged) != 1 {
				t.Errorf("Staged events = %d, want 1", len(ev.staged))
			}
			if st, _ := s.Check(context.Background(), tc.src.Name); st.Result != "ok" || st.NewLast != 0 || st.Candidates != 1 {
				t.Errorf("second Check = %+v, want ok with nothing new", st)
			}
		})
	}
}

// A new version a vendor publishes is picked up by the scheduler on its interval.
func TestSchedulerPicksUpNewVersion(t *testing.T) {
	key := newKey(t, 0)
	v := newVendor(t)
	files := map[string][]byte{"app-1.0.zip": []byte("version one")}
	v.PutSums(t, "/rel", key, files)
	clk := clock.NewFake(t0)
	s := openService(t, clk, nil, Source{Name: "vendor", Kind: KindOpenPGP, ChecksumsURL: v.URL("/rel/SHA256SUMS"),
		Key: armoredPublic(t, key), Interval: conf.Duration(time.Hour)})
	clocktest.Run(t, s.Run)
	clocktest.WaitFor(t, "the first check", func() bool { return s.Sources()[0].Checks >= 1 })
	if n := s.Sources()[0].Candidates; n != 1 {
		t.Fatalf("after the first check: %d candidates, want 1", n)
	}
	files["app-1.1.zip"] = []byte("version one point one")
	v.PutSums(t, "/rel", key, files)
	clocktest.WaitFor(t, "the new version", func() bool {
		clk.Advance(time.Hour) // the scheduler may not wait yet: advance until it checked
		return s.Sources()[0].Candidates == 2
	})
	cs, _ := s.Candidates(context.Background(), "vendor")
	if cs[0].Name != "app-1.1.zip" {
		t.Errorf("newest candidate = %s, want app-1.1.zip", cs[0].Name)
	}
	if c, err := s.Candidate(context.Background(), cs[0].ID); err != nil || c != cs[0] {
		t.Errorf("Candidate(%d) = %+v, %v; want %+v", cs[0].ID, c, err, cs[0])
	}
	if _, err := s.Candidate(context.Background(), 999); !errors.Is(err, ErrUnknownCandidate) {
		t.Errorf("Candidate(999) = %v, want ErrUnknownCandidate", err)
	}
}

// Bad input is refused with its reason, audited, shown as a health problem naming the
// source, and nothing of it is staged; earlier candidates stay.
func TestBadInputIsRefused(t *testing.T) {
	key := newKey(t, 0)
	other := newKey(t, 0)
	pub := armoredPublic(t, key)
	deb := []byte("!<arch>\nfake deb")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	deadURL := "http://" + closed.Addr().String() + "/file"
	closed.Close()
	expired := newKey(t, 30*time.Minute) // made an hour before now
	revoked := newKey(t, 0)
	revokedSig := detachSign(t, revoked, []byte("firmware"))
	if err := revoked.RevokeKey(packet.KeyCompromised, "lost", supplytest.SignConfig(signedAt)); err != nil {
		t.Fatal(err)
	}
	// refusedKey is how a refusal names the key: the signer's id and the pinned one.
	refusedKey := func(k *openpgp.Entity) string {
		id := keyID(k.PrimaryKey.KeyId)
		return "signing key " + id + " (pinned " + id + ")"
	}
	// endless is a feed whose body never ends.
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}

	tests := []struct {
		name   string
		setup  func(t *testing.T, v *supplytest.Vendor, dir string) Source
		reason string
		msg    string // in the error
	}{
		{"wrong sha256", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/f.msi", []byte("tampered"))
			return Source{Kind: KindURL, URL: v.URL("/f.msi"), SHA256: sum([]byte("genuine"))}
		}, reasonChecksum, "want " + sum([]byte("genuine"))},
		{"sha256 not as listed in SHA256SUMS", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutSums(t, "/s", nil, map[string][]byte{"a.zip": []byte("genuine")})
			v.Put("/s/a.zip", []byte("tampered"))
			return Source{Kind: KindURL, ChecksumsURL: v.URL("/s/SHA256SUMS")}
		}, reasonChecksum, "a.zip"},
		{"bad signature", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/fw.bin", []byte("firmware"))
			v.Put("/fw.bin.asc", detachSign(t, key, []byte("other firmware")))
			return Source{Kind: KindOpenPGP, URL: v.URL("/fw.bin"), Key: pub}
		}, reasonSignature, "bad signature by key " + keyID(key.PrimaryKey.KeyId)},
		{"signature by another key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutSums(t, "/s", other, map[string][]byte{"a.zip": []byte("a")})
			return Source{Kind: KindOpenPGP, ChecksumsURL: v.URL("/s/SHA256SUMS"), Key: pub}
		}, reasonSignature, "signature by key " + keyID(other.PrimaryKey.KeyId) + ", not by the pinned key " + keyID(key.PrimaryKey.KeyId)},
		{"expired key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/fw.bin", []byte("firmware"))
			v.Put("/fw.bin.asc", detachSign(t, expired, []byte("firmware")))
			return Source{Kind: KindOpenPGP, URL: v.URL("/fw.bin"), Key: armoredPublic(t, expired)}
		}, reasonKeyExpired, refusedKey(expired) + " expired before"},
		{"revoked key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/fw.bin", []byte("firmware"))
			v.Put("/fw.bin.asc", revokedSig)
			return Source{Kind: KindOpenPGP, URL: v.URL("/fw.bin"), Key: armoredPublic(t, revoked)}
		}, reasonKeyRevoked, refusedKey(revoked) + " is revoked"},
		{"SHA256SUMS signed by an expired key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutSums(t, "/s", expired, map[string][]byte{"a.zip": []byte("a")})
			return Source{Kind: KindOpenPGP, ChecksumsURL: v.URL("/s/SHA256SUMS"), Key: armoredPublic(t, expired)}
		}, reasonKeyExpired, refusedKey(expired) + " expired before"},
		{"InRelease signed by an expired key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutDebian(t, expired, supplytest.DebArchive{Deb: deb})
			return debSource(v, armoredPublic(t, expired))
		}, reasonKeyExpired, refusedKey(expired) + " expired before"},
		{"wrong size of a .deb", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutDebian(t, key, supplytest.DebArchive{Deb: deb, Size: int64(len(deb)) + 5})
			return debSource(v, pub)
		}, reasonSize, "the vendor states"},
		{"wrong size in a manifest", func(t *testing.T, v *supplytest.Vendor, dir string) Source {
			os.WriteFile(filepath.Join(dir, "x.iso"), []byte("media"), 0o600)
			os.WriteFile(filepath.Join(dir, "MANIFEST"), fmt.Appendf(nil, "%s 3 x.iso\n", sum([]byte("media"))), 0o600)
			return Source{Kind: KindImport, Dir: dir}
		}, reasonSize, "the manifest states 3"},
		{"InRelease signed by another key", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutDebian(t, other, supplytest.DebArchive{Deb: deb})
			return debSource(v, pub)
		}, reasonSignature, "not by the pinned key"},
		{"InRelease past Valid-Until", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutDebian(t, key, supplytest.DebArchive{Deb: deb, Valid: t0.Add(-time.Minute)})
			return debSource(v, pub)
		}, reasonStale, "valid until"},
		{"malformed Packages line", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.PutDebian(t, key, supplytest.DebArchive{Deb: deb, Packages: "Package: hello\nVersion: 1\nthis line is wrong\n"})
			return debSource(v, pub)
		}, reasonMalformed, "Packages:3:"},
		{"malformed SHA256SUMS line", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/s/SHA256SUMS", fmt.Appendf(nil, "%s  good.zip\nnot-a-hash  bad.zip\n", sum([]byte("x"))))
			v.Put("/s/good.zip", []byte("x"))
			return Source{Kind: KindURL, ChecksumsURL: v.URL("/s/SHA256SUMS")}
		}, reasonMalformed, "SHA256SUMS:2:"},
		{"HTML answer by content type", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Handle("/f.msi", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprint(w, "<p>please log in</p>")
			})
			return Source{Kind: KindURL, URL: v.URL("/f.msi"), SHA256: sum([]byte("x"))}
		}, reasonHTML, "HTML page"},
		{"HTML answer as a file", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Put("/s/SHA256SUMS", []byte("<!DOCTYPE html><html><body>captive portal</body></html>"))
			return Source{Kind: KindURL, ChecksumsURL: v.URL("/s/SHA256SUMS")}
		}, reasonHTML, "HTML page"},
		{"endless body", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Handle("/f.msi", endless)
			return Source{Kind: KindURL, URL: v.URL("/f.msi"), SHA256: sum([]byte("x")), MaxSize: 1 << 20}
		}, reasonTooLarge, "more than 1048576 bytes"},
		{"endless SHA256SUMS", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Handle("/s/SHA256SUMS", endless)
			return Source{Kind: KindURL, ChecksumsURL: v.URL("/s/SHA256SUMS")}
		}, reasonTooLarge, fmt.Sprintf("more than %d bytes", maxSumsFile)},
		{"endless InRelease", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			v.Handle("/debian/dists/stable/InRelease", endless)
			return debSource(v, pub)
		}, reasonTooLarge, fmt.Sprintf("more than %d bytes", maxInRelease)},
		{"unreachable", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			return Source{Kind: KindURL, URL: deadURL, SHA256: sum([]byte("x"))}
		}, reasonNetwork, "get " + deadURL},
		{"not found", func(t *testing.T, v *supplytest.Vendor, _ string) Source {
			return Source{Kind: KindURL, URL: v.URL("/gone.msi"), SHA256: sum([]byte("x"))}
		}, reasonStatus, "status 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t)
			// The source first serves a good file, staged as a candidate...
			good := []byte("earlier good release")
			v.Put("/good.bin", good)
			ev := &events{}
			src := tc.setup(t, v, t.TempDir())
			src.Name = "vendor"
			s := openService(t, clock.NewFake(t0), ev, src)
			before := stageEarlier(t, s, good)
			// ...then the bad input.
			st, err := s.Check(context.Background(), "vendor")
			if err != nil {
				t.Fatal(err)
			}
			if st.Result != "rejected" || st.Reason != tc.reason || !strings.Contains(st.Error, tc.msg) {
				t.Fatalf("Check = result %q reason %q error %q; want rejected, %q, containing %q", st.Result, st.Reason, st.Error, tc.reason, tc.msg)
			}
			if len(ev.rejected) != 1 || ev.rejected[0].Reason != tc.reason || ev.rejected[0].Source != "vendor" {
				t.Errorf("Rejected events = %+v, want one with reason %s", ev.rejected, tc.reason)
			}
			if !hasProblemNaming(s.Health(), "vendor") {
				t.Errorf("Health = %+v, want a problem naming source vendor", s.Health())
			}
			// A feed that is unreachable, slow, endless or answers HTML is a warning; input
			// that does not verify is an error.
			want := health.Error
			if slices.Contains([]string{reasonNetwork, reasonStatus, reasonDeadline, reasonHTML, reasonTooLarge}, tc.reason) {
				want = health.Warning
			}
			if ps := s.Health(); len(ps) != 1 || ps[0].Severity != want {
				t.Errorf("Health = %+v, want one problem of severity %v", ps, want)
			}
			cs, _ := s.Candidates(context.Background(), "")
			if len(cs) != 1 || cs[0] != before {
				t.Errorf("candidates after the refusal = %+v, want only the earlier %+v", cs, before)
			}
			if len(ev.staged) != 1 {
				t.Errorf("staged %+v, want only the earlier candidate", ev.staged)
			}
			objs, _ := os.ReadDir(filepath.Join(s.opts.Dir, "objects"))
			if len(objs) != 1 {
				t.Errorf("objects staged: %d, want only the earlier one", len(objs))
			}
		})
	}
}

func debSource(v *supplytest.Vendor, pub string) Source {
	return Source{Kind: KindDebian, URL: v.URL("/debian"), Key: pub, Suite: "stable",
		Components: []string{"main"}, Architectures: []string{"amd64"}, Packages: []string{"hello"}}
}

// stageEarlier records a candidate of source vendor as an earlier check would have.
func stageEarlier(t *testing.T, s *Service, data []byte) Candidate {
	t.Helper()
	part := filepath.Join(s.opts.Dir, "partial", "earlier")
	os.WriteFile(part, data, 0o600)
	w := newHashWriter(nopWriter{})
	w.Write(data)
	r := &checkRun{s: s, src: s.sources[0], ctx: context.Background()}
	if err := r.stage(offer{name: "good.bin", url: "http://vendor/good.bin", verification: "earlier"},
		&fetched{path: part, size: int64(len(data)), sha256: w.sum256(), sha512: w.sum512()}); err != nil {
		t.Fatal(err)
	}
	cs, _ := s.Candidates(context.Background(), "")
	return cs[0]
}

type nopWriter struct{}

func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }

// A slow feed: a check that does not finish within the source's timeout is cut on the
// fake clock, shown as a warning naming the source, and the earlier candidate stays.
func TestCheckTimeout(t *testing.T) {
	v := newVendor(t)
	v.Handle("/slow.msi", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	clk := clock.NewFake(t0)
	ev := &events{}
	s := openService(t, clk, ev, Source{Name: "slow", Kind: KindURL, URL: v.URL("/slow.msi"), SHA256: sum([]byte("x")), Timeout: conf.Duration(time.Minute)})
	before := stageEarlier(t, s, []byte("earlier good release"))
	done := make(chan Status, 1)
	go func() { st, _ := s.Check(context.Background(), "slow"); done <- st }()
	var st Status
	clocktest.WaitFor(t, "the check to be cut", func() bool {
		clk.Advance(time.Minute)
		select {
		case st = <-done:
			return true
		default:
			return false
		}
	})
	if st.Result != "rejected" || st.Reason != reasonDeadline {
		t.Errorf("Check = %+v, want rejected for deadline", st)
	}
	if ps := s.Health(); len(ps) != 1 || ps[0].Severity != health.Warning || !hasProblemNaming(ps, "slow") {
		t.Errorf("Health = %+v, want a warning naming source slow", ps)
	}
	if cs, _ := s.Candidates(context.Background(), ""); len(cs) != 1 || cs[0] != before || len(ev.rejected) != 1 {
		t.Errorf("candidates = %+v, rejections %+v; want only the earlier %+v and one rejection", cs, ev.rejected, before)
	}
}

// A download broken off is resumed with a Range request by the next check.
func TestDownloadResumes(t *testing.T) {
	v := newVendor(t)
	data := []byte(strings.Repeat("0123456789", 10000))
	var ranges []string
	cut := true
	v.Handle("/big.bin", func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		if cut {
			cut = false
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data[:40000])
			panic(http.ErrAbortHandler) // the connection breaks
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(data)))
	})
	s := openService(t, clock.NewFake(t0), nil, Source{Name: "big", Kind: KindURL, URL: v.URL("/big.bin"), SHA256: sum(data)})
	st, _ := s.Check(context.Background(), "big")
	if st.Result != "ok" || len(ranges) != 2 || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Fatalf("Check = %+v with ranges %q; want ok after a resumed second request", st, ranges)
	}
}

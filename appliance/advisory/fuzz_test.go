package advisory

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/patchgate/patchgate/clock"
)

// The parsers' invariant: whatever the bytes, no panic; an error is an ErrInvalid (the
// input, never the reader, is at fault); what is accepted is well-formed.

func FuzzParseKEV(f *testing.F) {
	f.Add([]byte(`{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2024-3400","dueDate":"2024-04-19"}]}`))
	f.Add([]byte(`{"vulnerabilities":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEV(bytes.NewReader(b), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for id, e := range k.Entries {
			if !cveRE.MatchString(id) || e.CVE != id {
				t.Fatalf("accepted entry %q as %q", e.CVE, id)
			}
		}
	})
}

func FuzzParseCSAF(f *testing.F) {
	f.Add([]byte(`{"document":{"csaf_version":"2.0","tracking":{"id":"X-1"}},"product_tree":{"branches":[{"category":"vendor","name":"V","branches":[{"category":"product_name","name":"M","branches":[{"category":"product_version","name":"1","product":{"product_id":"P","name":"V M 1"}}]}]}]},"vulnerabilities":[{"cve":"CVE-2026-0001","product_status":{"known_affected":["P"]}}]}`))
	f.Add([]byte(`{"document":{"csaf_version":"2.0","tracking":{"id":"X"}},"vulnerabilities":[{"product_status":{"known_affected":["nope"]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		advs, err := ParseCSAF(bytes.NewReader(b), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, a := range advs {
			if a.ID == "" || len(a.Products) == 0 {
				t.Fatalf("accepted an advisory without id or products: %+v", a)
			}
		}
	})
}

func FuzzParseOSV(f *testing.F) {
	f.Add([]byte(`{"id":"GHSA-1","aliases":["CVE-2026-0002"],"affected":[{"package":{"ecosystem":"PyPI","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2"}]}]}]}`))
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"y"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1"}]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		advs, err := ParseOSV(bytes.NewReader(b), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		for _, a := range advs {
			for _, c := range a.CVEs {
				if !cveRE.MatchString(c) {
					t.Fatalf("accepted CVE %q", c)
				}
			}
		}
		if _, err := parseOSVQuery(b); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("query answer error %v is not ErrInvalid", err)
		}
	})
}

func FuzzDiscovery(f *testing.F) {
	f.Add([]byte(`{"canonical_url":"https://x/p.json","distributions":[{"directory_url":"https://x/white/"},{"rolie":{"feeds":[{"url":"https://x/f.json"}]}}]}`))
	f.Add([]byte(`{"feed":{"entry":[{"link":[{"rel":"self","href":"https://x/a.json"}],"content":{"src":""}}]}}`))
	f.Add([]byte(`{"feed":{"entry":[{"updated":"2026-12-05T09:00:00+01:00","content":{"src":"2026/a.json"}},{"updated":"x","content":{"src":"b"}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseProviderMetadata(bytes.NewReader(b), 1<<16); err == nil && len(m.Directories)+len(m.Feeds) == 0 {
			t.Fatal("accepted provider metadata without distributions")
		} else if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
		cs, err := parseROLIE(b)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
		for _, c := range cs {
			if c.url == "" || c.at.Location() != time.UTC {
				t.Fatalf("ROLIE entry %+v: empty URL or time not UTC", c)
			}
		}
		for _, l := range parseIndex(b) {
			if l == "" {
				t.Fatal("empty index line")
			}
		}
	})
}

// FuzzImport: an import of any bytes (a zip or JSON) never panics and names what it
// refused.
func FuzzImport(f *testing.F) {
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte(`[{"id":"X","affected":[]}]`))
	f.Add([]byte(`{"document":{}}`))
	s := &Service{sec: Section{MaxSize: 1 << 16}.Defaults(), opts: Options{Clock: clock.NewFake(time.Unix(0, 0))}}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &Data{}
		var err error
		if bytes.HasPrefix(b, []byte("PK\x03\x04")) {
			err = s.importZip("f.zip", b, d)
		} else {
			err = s.importJSON("f.json", b, nil, d)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// FuzzCompareVersions: antisymmetric and reflexive, for any two strings.
func FuzzCompareVersions(f *testing.F) {
	f.Add("1:2.0-1", "2.0~rc1")
	f.Add("3.0.11-1~deb12u2", "3.0.15-1~deb12u1")
	f.Fuzz(func(t *testing.T, a, b string) {
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", a)
		}
		if x, y := CompareVersions(a, b), CompareVersions(b, a); x != -y {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed %d", a, b, x, y)
		}
	})
}

// FuzzIdentifiers: CPE and purl parsing never panic and match what they split.
func FuzzIdentifiers(f *testing.F) {
	f.Add("cpe:2.3:o:zebra:zt410_firmware:v1:*:*:*:*:*:*:*")
	f.Add("pkg:deb/debian/openssl@3.0.11?arch=amd64")
	f.Fuzz(func(t *testing.T, s string) {
		parseCPE(s)
		if p, ok := parsePURL(s); ok && (p.typ == "" || p.name == "") {
			t.Fatalf("parsePURL(%q) = %+v without type or name", s, p)
		}
		ecosystemOf(purl{typ: "rpm", namespace: s})
		matchProduct(Asset{Vendor: s, Model: s, Firmware: s, Ecosystem: "Debian", Packages: []Package{{s, s}}},
			Product{CPE: s, PURL: s, Vendor: s, Model: s, Versions: []string{s}, Fixed: s})
	})
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.2", "1.10", -1},
		{"1.0~rc1", "1.0", -1},
		{"1:0.9", "2.0", 1},
		{"3.0.11-1~deb12u2", "3.0.15-1~deb12u1", -1},
		{"V75.20.01Z", "V75.20.02Z", -1},
		{"2.0a", "2.0", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestEcosystem(t *testing.T) {
	tests := []struct{ os, want string }{
		{"Debian GNU/Linux 12 (bookworm)", "Debian:12"},
		{"Ubuntu 22.04.4 LTS", "Ubuntu:22.04"},
		{"Alpine Linux v3.19", "Alpine:v3.19"},
		{"Windows 10.0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Ecosystem(tt.os); got != tt.want {
			t.Errorf("Ecosystem(%q) = %q, want %q", tt.os, got, tt.want)
		}
	}
}

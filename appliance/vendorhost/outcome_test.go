package vendorhost

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/clock"
	"github.com/patchgate/patchgate/tuf"
)

// A device fetches a target whose signed custom metadata carries its version; each
// later firmware reading of that asset decides the read-back: not yet (another version
// within the grace, or a string that is no version at all), mismatch (another version
// past the grace), installed (the target's version); installed stays so.
func TestOutcomeReadBack(t *testing.T) {
	ft := &fakeTargets{have: map[string]string{"fw/printers/x.bin": "X", "fw/printers/nov.bin": "N"}}
	fm := &fakeMirror{name: "fw", version: 1, targets: []tuf.TargetInfo{
		{Path: "printers/x.bin", Custom: json.RawMessage(`{"version":"V75.20.02Z","vendor_urls":["http://updates.vendor.example/firmware/x.bin"]}`)},
		{Path: "printers/nov.bin", Custom: json.RawMessage(`{"version":7,"vendor_urls":["http://updates.vendor.example/firmware/nov.bin"]}`)},
	}}
	clk := clock.NewFake(time.Unix(1e9, 0))
	var got []Outcome
	s, err := New(Options{Targets: ft, Mirrors: []Mirror{fm}, Clock: clk, Grace: time.Hour,
		Identify: func(netip.Addr) (string, string) { return "devices", "printer-1" },
		AssetID: func(a netip.Addr) string {
			if a == netip.MustParseAddr("198.51.100.10") {
				return "mac:00:07:4d:10:20:30"
			}
			return ""
		},
		OnOutcome: func(_ context.Context, o Outcome) { got = append(got, o) }})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(from, path, method string) int {
		req := httptest.NewRequest(method, "http://updates.vendor.example"+path, nil)
		req.RemoteAddr = from + ":40000"
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	const asset = "mac:00:07:4d:10:20:30"
	if fetch("198.51.100.10", "/firmware/x.bin", http.MethodHead) != 200 || len(s.Outcomes("")) != 0 {
		t.Fatalf("HEAD recorded a fetch: %+v", s.Outcomes(""))
	}
	if fetch("198.51.100.99", "/firmware/x.bin", "GET") != 200 || fetch("198.51.100.10", "/firmware/nov.bin", "GET") != 200 {
		t.Fatal("fetch failed")
	}
	if n := len(s.Outcomes("")); n != 0 {
		t.Fatalf("a device that is no asset, or a target without a string version, made %d rows", n)
	}
	if fetch("198.51.100.10", "/firmware/x.bin", "GET") != 200 {
		t.Fatal("fetch failed")
	}
	step := func(name string, advance time.Duration, version string, want OutcomeState, wantSeen string, wantInstalled int) {
		t.Helper()
		clk.Advance(advance)
		n, err := s.ObserveFirmware(context.Background(), asset, version)
		os := s.Outcomes(asset)
		if err != nil || len(os) != 1 || os[0].State != want || os[0].Seen != wantSeen || n != wantInstalled {
			t.Fatalf("%s: %d installed, %v, %+v; want %s seen %q", name, n, err, os, want, wantSeen)
		}
	}
	if os := s.Outcomes(asset); len(os) != 1 || os[0].State != OutcomeNotYet || os[0].Version != "V75.20.02Z" ||
		os[0].URL != "updates.vendor.example/firmware/x.bin" || os[0].Asset != "printer-1" || os[0].Target != "printers/x.bin" {
		t.Fatalf("after the fetch: %+v", os)
	}
	step("old version within the grace", 10*time.Minute, "V75.20.01Z", OutcomeNotYet, "V75.20.01Z", 0)
	step("no version string", time.Minute, "  garbage ~~ \x00 ", OutcomeNotYet, "garbage ~~ \x00", 0)
	step("no version string past the grace stays pending", time.Hour, "n/a", OutcomeNotYet, "n/a", 0)
	if os := s.Outcomes(asset); !os[0].Unparsed {
		t.Fatalf("an unparsed reading is not marked: %+v", os)
	}
	step("old version past the grace", time.Hour, "V75.20.01Z", OutcomeMismatch, "V75.20.01Z", 0)
	// Fetching again after a mismatch starts over (the reading stays shown).
	fetch("198.51.100.10", "/firmware/x.bin", "GET")
	if os := s.Outcomes(asset); os[0].State != OutcomeNotYet || os[0].Seen != "V75.20.01Z" {
		t.Fatalf("fetched again after a mismatch: %+v", os)
	}
	step("the target's version", time.Minute, "v75.20.02z", OutcomeInstalled, "v75.20.02z", 1)
	step("installed stays installed", 2*time.Hour, "V75.20.01Z", OutcomeInstalled, "v75.20.02z", 0)
	fetch("198.51.100.10", "/firmware/x.bin", "GET")
	if os := s.Outcomes(asset); os[0].State != OutcomeInstalled {
		t.Fatalf("fetched again once installed: %+v", os)
	}
	var states []OutcomeState
	for _, o := range got {
		states = append(states, o.State)
	}
	// fetch, two unparsed readings (each shown), mismatch, fetch again, installed
	want := []OutcomeState{OutcomeNotYet, OutcomeNotYet, OutcomeNotYet, OutcomeMismatch, OutcomeNotYet, OutcomeInstalled}
	if len(states) != len(want) {
		t.Fatalf("changes reported %v, want %v", states, want)
	}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("changes reported %v, want %v", states, want)
		}
	}
	if st := s.Status(0); len(st.Outcomes) != 1 {
		t.Fatalf("status outcomes %+v", st.Outcomes)
	}
	if n, err := s.ObserveFirmware(context.Background(), "mac:other", "V75.20.02Z"); n != 0 || err != nil {
		t.Fatalf("another asset: %d %v", n, err)
	}
}

// Custom metadata is the repository's own: any bytes give a trimmed string or "".
func FuzzTargetVersion(f *testing.F) {
	for _, s := range []string{`{"version":"1.2"}`, `{"version":7}`, `{"version":null}`, `[1]`, `{"version":" x "}`, `{`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v := targetVersion(json.RawMessage(in))
		if v != "" && (v[0] == ' ' || v[len(v)-1] == ' ') {
			t.Fatalf("targetVersion(%q) = %q: not trimmed", in, v)
		}
	})
}

func TestIsVersion(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     bool
	}{
		{"dotted", "V75.20.02Z", true},
		{"with a space inside", "FW 4.2", true},
		{"pre-release", "2.1.0-b3", true},
		{"empty", "", false},
		{"no digit", "n/a", false},
		{"control character", "1.2\x00", false},
		{"non-ASCII", "1.2é", false},
		{"leading space", " 1.2", false},
		{"too long", strings.Repeat("1", maxVersion+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isVersion(tc.in); got != tc.want {
				t.Fatalf("isVersion(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// A reading from a device is any bytes: isVersion never panics and accepts only
// bounded printable strings with a digit.
func FuzzIsVersion(f *testing.F) {
	for _, s := range []string{"V75.20.02Z", "n/a", "", "1.2\x00", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if isVersion(in) && (len(in) > maxVersion || !strings.ContainsAny(in, "0123456789")) {
			t.Fatalf("isVersion(%q) accepted", in)
		}
	})
}

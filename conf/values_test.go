package conf

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    ByteSize
		wantErr bool
	}{
		{"0", 0, false},
		{"512", 512, false},
		{"4KiB", 4096, false},
		{"20 GiB", 20 << 30, false},
		{"1TiB", 1 << 40, false},
		{"-1", 0, true},
		{"1.5GiB", 0, true},
		{"GiB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				back, err := ParseByteSize(got.String())
				if err != nil || back != got {
					t.Errorf("round trip %q -> %s -> %d, %v", tt.in, got, back, err)
				}
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	if s.Value() != "hunter2" {
		t.Fatalf("Value() = %q", s.Value())
	}
	out, err := yaml.Marshal(struct {
		Token Secret `yaml:"token"`
	}{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{s.String(), mustText(t, s), strings.Trim(strings.TrimSpace(strings.TrimPrefix(string(out), "token:")), "'")} {
		if strings.Contains(got, "hunter2") || got != "********" {
			t.Errorf("secret printed as %q", got)
		}
	}
}

func mustText(t *testing.T, s Secret) string {
	b, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIsHTTPURL(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"http", "http://10.0.0.1:8080", true},
		{"https with path", "https://feeds.example/osv/v1?x=1", true},
		{"empty", "", false},
		{"no scheme", "feeds.example/osv", false},
		{"ftp", "ftp://feeds.example/", false},
		{"no host", "https:///path", false},
		{"unparsable", "http://[::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsHTTPURL(tt.in); got != tt.want {
				t.Errorf("IsHTTPURL(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

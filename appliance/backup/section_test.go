package backup

import (
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/patchgate/patchgate/conf"
)

func TestSectionValidate(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	rcpt := id.Recipient().String()
	ok := func() Section {
		s := DefaultSection()
		s.Interval = conf.Duration(24 * time.Hour)
		s.Recipients = []string{rcpt}
		s.Local.Dir = "/var/backups/patchgate"
		return s
	}
	tests := []struct {
		name string
		edit func(*Section)
		want string // "" = valid
	}{
		{name: "default", edit: func(s *Section) { *s = DefaultSection() }},
		{name: "local daily", edit: func(*Section) {}},
		{name: "s3", edit: func(s *Section) {
			s.Local.Dir = ""
			s.S3 = S3Section{Endpoint: "s3.example.net", Bucket: "b", Prefix: "site/", AccessKey: "a", SecretKey: "s"}
		}},
		{name: "interval too short", edit: func(s *Section) { s.Interval = conf.Duration(time.Minute) }, want: "backup.interval: must be 0"},
		{name: "bad recipient", edit: func(s *Section) { s.Recipients = []string{"ssh-ed25519 AAAA"} }, want: "backup.recipients[0]"},
		{name: "identity instead of recipient", edit: func(s *Section) { s.Recipients = []string{id.String()} }, want: "backup.recipients[0]"},
		{name: "keep zero", edit: func(s *Section) { s.Keep = 0 }, want: "backup.keep"},
		{name: "relative dir", edit: func(s *Section) { s.Local.Dir = "backups" }, want: "backup.local.dir"},
		{name: "s3 with scheme", edit: func(s *Section) {
			s.S3 = S3Section{Endpoint: "https://s3.example.net", Bucket: "b", AccessKey: "a", SecretKey: "s"}
		}, want: "backup.s3.endpoint"},
		{name: "s3 without keys", edit: func(s *Section) { s.S3 = S3Section{Endpoint: "s3.example.net", Bucket: "b"} }, want: "backup.s3: access_key"},
		{name: "schedule without target", edit: func(s *Section) { s.Local.Dir = "" }, want: "needs recipients and a target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.edit(&s)
			var ps conf.Problems
			s.Validate("backup", &ps)
			got := ""
			for _, p := range ps {
				got += p.Key + ": " + p.Msg + "\n"
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("Validate = %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "AGE-SECRET-KEY") {
				t.Errorf("a problem prints the identity: %q", got)
			}
		})
	}
	if c := ok().Config(); len(c.Recipients) != 1 || len(c.Targets) != 1 || c.Interval != 24*time.Hour {
		t.Errorf("Config() = %+v", c)
	}
}

// FuzzParseManifest: any bytes give a manifest or an error, never a panic; an accepted
// manifest's members are clean paths under the known prefixes.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"files":[{"path":"state/a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`))
	f.Add([]byte(`{"format":1,"files":[{"path":"state/../../etc/passwd","size":1,"sha256":""}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`nonsense`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, fl := range m.Files {
			if checkMember(fl.Path) != nil || strings.Contains(fl.Path, "..") && strings.Contains("/"+fl.Path+"/", "/../") {
				t.Errorf("accepted member %q", fl.Path)
			}
		}
	})
}

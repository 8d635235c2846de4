package backup

import (
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/patchgate/patchgate/conf"
	"github.com/patchgate/patchgate/conf/conftest"
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
	tests := []conftest.Case[Section]{
		{Name: "default", Edit: func(s *Section) { *s = DefaultSection() }},
		{Name: "local daily", Edit: func(*Section) {}},
		{Name: "s3", Edit: func(s *Section) {
			s.Local.Dir = ""
			s.S3 = S3Section{Endpoint: "s3.example.net", Bucket: "b", Prefix: "site/", AccessKey: "a", SecretKey: "s"}
		}},
		{Name: "interval too short", Edit: func(s *Section) { s.Interval = conf.Duration(time.Minute) }, Want: "backup.interval: must be 0"},
		{Name: "bad recipient", Edit: func(s *Section) { s.Recipients = []string{"ssh-ed25519 AAAA"} }, Want: "backup.recipients[0]"},
		{Name: "identity instead of recipient", Edit: func(s *Section) { s.Recipients = []string{id.String()} }, Want: "backup.recipients[0]"},
		{Name: "keep zero", Edit: func(s *Section) { s.Keep = 0 }, Want: "backup.keep"},
		{Name: "relative dir", Edit: func(s *Section) { s.Local.Dir = "backups" }, Want: "backup.local.dir"},
		{Name: "s3 with scheme", Edit: func(s *Section) {
			s.S3 = S3Section{Endpoint: "https://s3.example.net", Bucket: "b", AccessKey: "a", SecretKey: "s"}
		}, Want: "backup.s3.endpoint"},
		{Name: "s3 without keys", Edit: func(s *Section) { s.S3 = S3Section{Endpoint: "s3.example.net", Bucket: "b"} }, Want: "backup.s3: access_key"},
		{Name: "schedule without target", Edit: func(s *Section) { s.Local.Dir = "" }, Want: "needs recipients and a target"},
	}
	conftest.Run(t, "backup", ok, tests, func(t *testing.T, got string) {
		if strings.Contains(got, "AGE-SECRET-KEY") {
			t.Errorf("a problem prints the identity: %q", got)
		}
	})

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

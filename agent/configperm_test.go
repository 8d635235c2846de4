package agent

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestACLWriters(t *testing.T) {
	const (
		users    = "S-1-5-32-545"
		authUser = "S-1-5-11"
		alice    = "S-1-5-21-1-2-3-1001"
		read     = 0x120089 // FILE_GENERIC_READ
		full     = 0x1f01ff // FILE_ALL_ACCESS
	)
	tests := []struct {
		name  string
		owner string
		null  bool
		aces  []ACE
		want  []string
	}{
		{"service install's ACL", sidAdministrators, false, []ACE{
			{SID: sidSystem, Mask: full}, {SID: sidAdministrators, Mask: full}}, nil},
		{"users may read", sidAdministrators, false, []ACE{
			{SID: sidSystem, Mask: full}, {SID: users, Mask: read}}, nil},
		{"no DACL", sidAdministrators, true, nil, []string{sidEveryone}},
		{"empty DACL: nobody", sidAdministrators, false, nil, nil},
		{"ProgramData's inherited add-file for Users", sidAdministrators, false, []ACE{
			{SID: sidSystem, Mask: full}, {SID: sidAdministrators, Mask: full},
			{SID: users, Mask: read}, {SID: users, Mask: 0x2 | 0x4 | 0x10 | 0x100}}, []string{users}},
		{"creator owner is inherit-only", sidAdministrators, false, []ACE{
			{SID: sidCreatorOwner, Mask: full, InheritOnly: true}}, nil},
		{"inherit-only write for users does not apply here", sidAdministrators, false, []ACE{
			{SID: users, Mask: full, InheritOnly: true}}, nil},
		{"the owner may write", alice, false, []ACE{{SID: alice, Mask: full}}, nil},
		{"another user may write", sidAdministrators, false, []ACE{{SID: alice, Mask: 0x2}}, []string{alice}},
		{"generic write", sidAdministrators, false, []ACE{{SID: authUser, Mask: 0x40000000}}, []string{authUser}},
		{"generic all", sidAdministrators, false, []ACE{{SID: authUser, Mask: 0x10000000}}, []string{authUser}},
		{"write DAC", sidAdministrators, false, []ACE{{SID: users, Mask: 0x40000}}, []string{users}},
		{"take ownership", sidAdministrators, false, []ACE{{SID: users, Mask: 0x80000}}, []string{users}},
		{"delete child", sidAdministrators, false, []ACE{{SID: users, Mask: 0x40}}, []string{users}},
		{"delete alone is not writing", sidAdministrators, false, []ACE{{SID: users, Mask: 0x10000 | read}}, nil},
		{"denied before allowed", sidAdministrators, false, []ACE{
			{Deny: true, SID: users, Mask: aclWriteMask}, {SID: users, Mask: full}}, nil},
		{"everyone denied before allowed", sidAdministrators, false, []ACE{
			{Deny: true, SID: sidEveryone, Mask: aclWriteMask}, {SID: alice, Mask: full}}, nil},
		{"denied after allowed does not count", sidAdministrators, false, []ACE{
			{SID: users, Mask: full}, {Deny: true, SID: users, Mask: aclWriteMask}}, []string{users}},
		{"deny for another SID does not cover", sidAdministrators, false, []ACE{
			{Deny: true, SID: alice, Mask: aclWriteMask}, {SID: users, Mask: 0x2}}, []string{users}},
		{"partial deny leaves append", sidAdministrators, false, []ACE{
			{Deny: true, SID: users, Mask: 0x2}, {SID: users, Mask: 0x2 | 0x4}}, []string{users}},
		{"each SID once, in order", sidAdministrators, false, []ACE{
			{SID: users, Mask: 0x2}, {SID: alice, Mask: 0x4}, {SID: users, Mask: 0x4}}, []string{users, alice}},
		{"trusted installer", sidAdministrators, false, []ACE{{SID: sidTrustedInstaller, Mask: full}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := aclWriters(tc.owner, tc.null, tc.aces)
			if !slices.Equal(got, tc.want) {
				t.Errorf("aclWriters = %q, want %q", got, tc.want)
			}
			if prob := aclProblem(tc.owner, tc.null, tc.aces); (prob == "") != (len(tc.want) == 0) {
				t.Errorf("aclProblem = %q with writers %q", prob, got)
			}
		})
	}
}

func TestModeProblem(t *testing.T) {
	tests := []struct {
		name string
		mode fs.FileMode
		want string
	}{
		{"packaged folder", fs.ModeDir | 0o750, ""},
		{"packaged file", 0o640, ""},
		{"world readable", 0o644, ""},
		{"group writable", 0o660, "writable by its group (mode 0660)"},
		{"world writable", fs.ModeDir | 0o777, "writable by every user (mode 0777)"},
		{"only other write", 0o602, "writable by every user (mode 0602)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := modeProblem(tc.mode); !strings.Contains(got, tc.want) || (tc.want == "") != (got == "") {
				t.Errorf("modeProblem(%v) = %q, want %q", tc.mode, got, tc.want)
			}
		})
	}
}

// TestCheckConfigPermissions runs the Unix check on real files in t.TempDir().
func TestCheckConfigPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the Windows check reads ACLs: TestACLWriters covers its logic")
	}
	tests := []struct {
		name                                    string
		dirMode, cfgMode, rootDirMode, rootMode fs.FileMode
		owner                                   int    // chown the config to this uid (root only), -1: leave
		want                                    string // "" for no error
	}{
		{"as packaged", 0o750, 0o640, 0o755, 0o644, -1, ""},
		{"readable by all", 0o755, 0o644, 0o755, 0o644, -1, ""},
		{"folder writable by all", 0o777, 0o640, 0o755, 0o644, -1, "agent: config permissions: DIR is writable by every user (mode 0777): it decides what the agent runs as root; fix with: chmod go-w \"DIR\""},
		{"file writable by the group", 0o750, 0o660, 0o755, 0o644, -1, "agent: config permissions: DIR/agent.yaml is writable by its group (mode 0660)"},
		{"trusted root writable by all", 0o750, 0o640, 0o755, 0o666, -1, "agent: config permissions: ROOTS/root.json is writable by every user"},
		{"trusted root's folder writable by the group", 0o750, 0o640, 0o775, 0o644, -1, "agent: config permissions: ROOTS is writable by its group"},
		{"owned by another user", 0o750, 0o640, 0o755, 0o644, 65534, "agent: config permissions: DIR/agent.yaml is owned by uid 65534, neither root nor the agent's user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.owner >= 0 && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			dir, roots := filepath.Join(t.TempDir(), "cfg"), filepath.Join(t.TempDir(), "roots")
			cfg, root := filepath.Join(dir, "agent.yaml"), filepath.Join(roots, "root.json")
			for _, d := range []string{dir, roots} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{cfg, root} {
				if err := os.WriteFile(f, []byte("{}\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for p, m := range map[string]fs.FileMode{dir: tc.dirMode, cfg: tc.cfgMode, roots: tc.rootDirMode, root: tc.rootMode} {
				if err := os.Chmod(p, m); err != nil {
					t.Fatal(err)
				}
			}
			if tc.owner >= 0 {
				if err := os.Chown(cfg, tc.owner, -1); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckConfigPermissions(cfg, Config{Repos: map[string]string{"demo": root}})
			want := strings.NewReplacer("ROOTS", roots, "DIR", dir).Replace(tc.want)
			if (err == nil) != (want == "") || (err != nil && !strings.HasPrefix(err.Error(), want)) {
				t.Errorf("CheckConfigPermissions = %v, want %q", err, want)
			}
		})
	}
	if err := CheckConfigPermissions(filepath.Join(t.TempDir(), "none.yaml"), Config{}); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// fakeAppliance stands in for appliance/selfupdate, whose own tests cover installing;
// here the permission, the input and the answers are under test.
type fakeAppliance struct {
	calls  []string
	refuse bool
}

func (f *fakeAppliance) Install(ctx context.Context, actor, version string, reboot bool) error {
	if FromContext(ctx) == nil {
		return errors.New("no principal in the context") // the audit record needs it
	}
	if f.refuse {
		return fmt.Errorf("%w: selfupdate: install %s: refused: no newer version is staged", ErrConflict, version)
	}
	f.calls = append(f.calls, fmt.Sprintf("install %s by %s reboot=%v", version, actor, reboot))
	return nil
}

func (f *fakeAppliance) Rollback(ctx context.Context, actor string, reboot bool) error {
	f.calls = append(f.calls, fmt.Sprintf("rollback by %s reboot=%v", actor, reboot))
	return nil
}

func TestApplianceUpdateActions(t *testing.T) {
	fx := newFixture(t, Policy{})
	f := &fakeAppliance{}
	fx.a.SetApplianceUpdates(f)
	viewer := fx.client(t)
	viewer.login("vic", fx.user(t, "vic", true, Viewer, Deployer, Approver))
	admin := fx.client(t)
	admin.login("ada", fx.user(t, "ada", true, Admin))

	cases := []struct {
		name   string
		c      *client
		path   string
		body   map[string]string
		status int
		call   string
	}{
		{"not an admin", viewer, "/api/v1/appliance/install", map[string]string{"version": "1.2"}, 403, ""},
		{"not an admin rolling back", viewer, "/api/v1/appliance/rollback", nil, 403, ""},
		{"install", admin, "/api/v1/appliance/install", map[string]string{"version": "1.2"}, 202, "install 1.2 by ada reboot=true"},
		{"install without reboot", admin, "/api/v1/appliance/install", map[string]string{"version": "1.2", "reboot": "false"}, 202, "install 1.2 by ada reboot=false"},
		{"install without a version", admin, "/api/v1/appliance/install", map[string]string{}, 400, ""},
		{"rollback", admin, "/api/v1/appliance/rollback", map[string]string{}, 202, "rollback by ada reboot=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.calls = nil
			st, m := tc.c.do("POST", tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("POST %s = %d %v, want %d", tc.path, st, m, tc.status)
			}
			if got := fmt.Sprint(f.calls); (tc.call == "" && len(f.calls) > 0) || (tc.call != "" && got != "["+tc.call+"]") {
				t.Errorf("calls %s, want %q", got, tc.call)
			}
		})
	}
	f.refuse = true
	if st, m := admin.do("POST", "/api/v1/appliance/install", map[string]string{"version": "1.3"}); st != 409 || m["error"] == nil {
		t.Errorf("a refused install = %d %v, want 409 with the reason", st, m)
	}
}

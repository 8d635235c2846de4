package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Role is a set of permissions a user holds. A user may hold several roles; an API
// token exactly one.
type Role string

// The roles.
const (
	Viewer    Role = "viewer"    // reads status, inventory, rollouts, exceptions, compliance
	Requester Role = "requester" // asks for rollouts and exceptions
	Approver  Role = "approver"  // approves or rejects them (never their own)
	Deployer  Role = "deployer"  // schedules, pauses, resumes, halts, forces stages
	Auditor   Role = "auditor"   // read-only plus the audit trail and its export
	Admin     Role = "admin"     // users and settings
)

// Roles lists every role in a stable order.
var Roles = []Role{Viewer, Requester, Approver, Deployer, Auditor, Admin}

// Permission is what a route needs.
type Permission string

// The permissions. Public and Session are special: Public needs nobody, Session any
// logged-in principal even before the second factor (to finish logging in).
const (
	Public           Permission = "public"
	Session          Permission = "session"
	Self             Permission = "self" // one's own account, tokens, recovery codes
	StatusRead       Permission = "status.read"
	InventoryRead    Permission = "inventory.read"
	InventoryWrite   Permission = "inventory.write"
	RolloutRead      Permission = "rollout.read"
	RolloutRequest   Permission = "rollout.request"
	RolloutApprove   Permission = "rollout.approve"
	RolloutDeploy    Permission = "rollout.deploy"
	ExceptionRead    Permission = "exception.read"
	ExceptionRequest Permission = "exception.request"
	ExceptionApprove Permission = "exception.approve"
	AuditRead        Permission = "audit.read"
	AuditExport      Permission = "audit.export"
	ComplianceRead   Permission = "compliance.read"
	UsersManage      Permission = "users.manage"
	SettingsManage   Permission = "settings.manage"
	BreakGlass       Permission = "breakglass"
)

var viewerPerms = []Permission{Self, StatusRead, InventoryRead, RolloutRead, ExceptionRead, ComplianceRead}

// Grants is the role → permission table.
var Grants = map[Role][]Permission{
	Viewer:    viewerPerms,
	Requester: append(slices.Clone(viewerPerms), RolloutRequest, ExceptionRequest, BreakGlass),
	Approver:  append(slices.Clone(viewerPerms), RolloutApprove, ExceptionApprove, BreakGlass),
	Deployer:  append(slices.Clone(viewerPerms), RolloutDeploy, InventoryWrite, BreakGlass),
	Auditor:   append(slices.Clone(viewerPerms), AuditRead, AuditExport),
	// An admin may also request rollouts, so that a one-person site can ship (with
	// rollout.approval_policy self_with_review); approving stays with approvers. Rings
	// and windows (rollout.deploy) stay with deployers: a one-account site's account
	// holds admin and deployer (users may hold several roles; see README.md).
	Admin: append(slices.Clone(viewerPerms), UsersManage, SettingsManage, InventoryWrite, AuditRead, BreakGlass, RolloutRequest),
}

// Grants reports whether r grants p.
func (r Role) Grants(p Permission) bool { return slices.Contains(Grants[r], p) }

// NeedsMFA reports whether the role can change anything, and so requires a second
// factor on every login.
func (r Role) NeedsMFA() bool { return r != Viewer && r != Auditor }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(strings.ToLower(s)))
	if !slices.Contains(Roles, r) {
		return "", fmt.Errorf("unknown role %q (want one of viewer, requester, approver, deployer, auditor, admin)", s)
	}
	return r, nil
}

// ParseRoles parses a comma-separated list of roles; it must not be empty.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		r, err := ParseRole(part)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("at least one role is needed")
	}
	slices.SortFunc(out, func(a, b Role) int { return slices.Index(Roles, a) - slices.Index(Roles, b) })
	return out, nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// Routes maps every route pattern of the admin mux to the permission it needs.
type Routes map[string]Permission

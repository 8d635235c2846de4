package auth

import (
	"net/http"
	"strings"
)

// AdminRoutes is the one route → permission table of the admin listener: every pattern
// registered on the admin mux must be here (appliance's TestEveryAdminRouteHasAPermission
// fails otherwise, and Guard refuses a route that is not). Keep it sorted by area.
var AdminRoutes = Routes{
	// Probes, assets and the login pages need nobody.
	"GET /healthz":       Public,
	"GET /readyz":        Public,
	"GET /static/":       Public,
	"GET /login":         Public,
	"POST /login":        Public,
	"GET /setup":         Public,
	"POST /setup":        Public,
	"GET /{$}":           StatusRead,
	"GET /metrics":       StatusRead,
	"GET /api/v1/status": StatusRead,
	// The site CA certificate is public: devices and admins download it to trust it.
	"GET /vendorhost/ca.pem":                  Public,
	"GET /api/v1/vendorhost":                  InventoryRead,
	"GET /api/v1/assets/{id}/vendor-outcomes": InventoryRead,
	"POST /api/v1/vendorhost/asked/candidate": RolloutRequest, // as POST /api/v1/sources/{name}/check

	// Finishing a login: any session, also before the second factor.
	"GET /login/mfa":     Session,
	"POST /login/mfa":    Session,
	"POST /logout":       Session,
	"GET /account/mfa":   Session,
	"POST /account/mfa":  Session,
	"GET /api/v1/whoami": Session,

	// One's own account.
	"GET /account":                    Self,
	"POST /account/password":          Self,
	"POST /account/recovery-codes":    Self,
	"GET /api/v1/tokens":              Self,
	"POST /api/v1/tokens":             Self,
	"POST /api/v1/tokens/{id}/revoke": Self,
	"POST /api/v1/breakglass":         BreakGlass,
	"POST /api/v1/breakglass/end":     Self,

	// Users.
	"GET /users":                          UsersManage,
	"GET /api/v1/users":                   UsersManage,
	"POST /api/v1/users":                  UsersManage,
	"POST /api/v1/users/{name}/roles":     UsersManage,
	"POST /api/v1/users/{name}/disable":   UsersManage,
	"POST /api/v1/users/{name}/enable":    UsersManage,
	"POST /api/v1/users/{name}/reset-mfa": UsersManage,
	"POST /api/v1/users/{name}/unlock":    UsersManage,

	// Exceptions.
	"GET /exceptions":                      ExceptionRead,
	"GET /api/v1/exceptions":               ExceptionRead,
	"POST /api/v1/exceptions":              ExceptionRequest,
	"POST /api/v1/exceptions/{id}/approve": ExceptionApprove,
	"POST /api/v1/exceptions/{id}/reject":  ExceptionApprove,
	"POST /api/v1/exceptions/{id}/revoke":  ExceptionApprove,
	"POST /api/v1/exceptions/{id}/review":  ExceptionApprove,

	// Rollout approvals.
	"GET /approvals":                      RolloutRead,
	"GET /api/v1/approvals":               RolloutRead,
	"POST /api/v1/approvals/{id}/approve": RolloutApprove,
	"POST /api/v1/approvals/{id}/reject":  RolloutApprove,
	// Self-approval under rollout.approval_policy self_with_review (the engine refuses it
	// otherwise, and for anyone but the requester) and another account's countersignature.
	"POST /api/v1/approvals/{id}/self-approve": RolloutRequest,
	"GET /reviews":                          RolloutRead,
	"GET /api/v1/reviews":                   RolloutRead,
	"POST /api/v1/reviews/{id}/countersign": RolloutApprove,

	// Audit trail.
	"GET /audit":                    AuditRead,
	"GET /api/v1/audit":             AuditRead,
	"GET /api/v1/audit/verify":      AuditRead,
	"GET /api/v1/audit/checkpoints": AuditRead,
	"GET /api/v1/audit/export":      AuditExport,

	// Inventory (appliance/inventory).
	"GET /inventory":           InventoryRead,
	"GET /inventory/{id}":      InventoryRead,
	"GET /api/v1/assets":       InventoryRead,
	"GET /api/v1/assets.csv":   InventoryRead,
	"GET /api/v1/assets/{id}":  InventoryRead,
	"POST /api/v1/assets/{id}": InventoryWrite,
	"GET /api/v1/sightings":    InventoryRead,
	"GET /api/v1/scans":        InventoryRead,
	"POST /api/v1/scans":       InventoryWrite,

	// Rollouts (appliance/rollout's admin API).
	"GET /api/v1/rings":                RolloutRead,
	"PUT /api/v1/rings/{name}":         RolloutDeploy,
	"DELETE /api/v1/rings/{name}":      RolloutDeploy,
	"POST /api/v1/rings/{name}":        RolloutDeploy, // the form twin of PUT
	"POST /api/v1/rings/{name}/delete": RolloutDeploy, // the form twin of DELETE
	"POST /api/v1/rings":               RolloutDeploy, // a new ring from a form, its name in the body
	"GET /api/v1/windows":              RolloutRead,
	"GET /api/v1/windows/openings":     RolloutRead,
	"POST /api/v1/windows":             RolloutDeploy,
	"DELETE /api/v1/windows/{id}":      RolloutDeploy,
	"POST /api/v1/windows/{id}/delete": RolloutDeploy, // the form twin of DELETE
	// The rollout pages (their forms post to the API routes above).
	"GET /releases":                        RolloutRead,
	"GET /rollouts":                        RolloutRead,
	"GET /rollouts/{id}":                   RolloutRead,
	"GET /rings":                           RolloutRead,
	"GET /windows":                         RolloutRead,
	"GET /api/v1/releases":                 RolloutRead,
	"GET /api/v1/releases/{id}":            RolloutRead,
	"POST /api/v1/releases":                RolloutRequest,
	"POST /api/v1/releases/kev":            RolloutRequest,
	"GET /api/v1/rollouts":                 RolloutRead,
	"GET /api/v1/rollouts/{id}":            RolloutRead,
	"GET /api/v1/rollouts/{id}/events":     RolloutRead,
	"POST /api/v1/rollouts":                RolloutRequest,
	"PUT /api/v1/rollouts/{id}":            RolloutRequest,
	"POST /api/v1/rollouts/{id}/{action}":  ByAction, // see AdminActions
	"GET /api/v1/deployments":              RolloutRead,
	"GET /api/v1/deployments/{id}":         RolloutRead,
	"GET /api/v1/overdue":                  RolloutRead,
	"GET /api/v1/enrolment-tokens":         RolloutRead,
	"POST /api/v1/enrolment-tokens":        SettingsManage,
	"DELETE /api/v1/enrolment-tokens/{id}": SettingsManage,
	"GET /api/v1/agents":                   RolloutRead,
	"DELETE /api/v1/agents/{id}":           SettingsManage,

	// Vendor sources and their verified candidates (appliance/supply).
	"GET /api/v1/sources":               RolloutRead,
	"GET /api/v1/candidates":            RolloutRead,
	"POST /api/v1/sources/{name}/check": RolloutRequest,
	"GET /sources":                      RolloutRead, // the Sources page, its "check now" posts the route above
	// A candidate made a release in one step (page and API), as POST /api/v1/releases.
	"GET /candidates":                      RolloutRead,
	"POST /api/v1/candidates/{id}/release": RolloutRequest,

	// The first-run wizard (appliance/wizard.go): writes the config file.
	"GET /wizard":         SettingsManage,
	"GET /wizard/{step}":  SettingsManage,
	"POST /wizard/{step}": SettingsManage,

	// The appliance's own version (appliance/selfupdate): install a staged version into
	// the other A/B slot, or go back to the previous one. Admins only, audited.
	"POST /api/v1/appliance/install":  SettingsManage,
	"POST /api/v1/appliance/rollback": SettingsManage,

	// Vulnerability intake and exposure (appliance/advisory): reading as the inventory,
	// importing and fetching as the KEV import (a release requester).
	"GET /exposure":                            InventoryRead,
	"GET /api/v1/exposure":                     InventoryRead,
	"GET /api/v1/exposure/{asset}":             InventoryRead,
	"GET /api/v1/advisory/feeds":               InventoryRead,
	"POST /api/v1/advisory/feeds/{name}/fetch": RolloutRequest,
	"POST /api/v1/advisory/import":             RolloutRequest,

	// Compliance reports.
	"GET /compliance":            ComplianceRead,
	"GET /compliance/report":     ComplianceRead,
	"GET /compliance/report.pdf": ComplianceRead,
	"GET /api/v1/compliance":     ComplianceRead,
	"GET /api/v1/compliance.csv": ComplianceRead,
}

// ByAction marks a route whose last path segment is an action; its permission is
// looked up in AdminActions. An action not listed there is refused.
const ByAction Permission = "by-action"

// AdminActions gives the permission of each action of a ByAction route.
var AdminActions = map[string]map[string]Permission{
	"POST /api/v1/rollouts/{id}/{action}": {
		"submit":   RolloutRequest,
		"approve":  RolloutApprove,
		"reject":   RolloutApprove,
		"schedule": RolloutDeploy,
		"pause":    RolloutDeploy,
		"resume":   RolloutDeploy,
		"halt":     RolloutDeploy,
		"cancel":   RolloutDeploy,
		"advance":  RolloutDeploy, // a forced stage; the engine records who forced it
	},
}

// permissionFor returns the permission r needs on pattern (false: refuse).
func permissionFor(routes Routes, pattern string, r *http.Request) (Permission, bool) {
	perm, ok := routes[pattern]
	if !ok || perm != ByAction {
		return perm, ok
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	action := path[strings.LastIndex(path, "/")+1:]
	perm, ok = AdminActions[pattern][action]
	return perm, ok
}

// Probe is a concrete request for a route pattern (one per action of a ByAction route)
// and the permission it needs; tests check every role against every probe.
type Probe struct {
	Pattern, Method, Path string
	Perm                  Permission // "" when the pattern has no entry
}

// Probes returns the probes for patterns: wildcards become "1", a trailing slash gets
// "x", and a ByAction route gets one probe per listed action plus one unlisted action
// (which needs a permission nobody holds).
func Probes(patterns []string) []Probe {
	var out []Probe
	for _, pattern := range patterns {
		method, path := probeTarget(pattern)
		perm := AdminRoutes[pattern]
		if perm != ByAction {
			out = append(out, Probe{pattern, method, path, perm})
			continue
		}
		base := strings.TrimSuffix(path, "1")
		for action, p := range AdminActions[pattern] {
			out = append(out, Probe{pattern, method, base + action, p})
		}
		out = append(out, Probe{pattern, method, base + "no-such-action", "nobody"})
	}
	return out
}

// probeTarget is the method and a concrete path matching pattern: wildcards become
// "1" and a trailing slash gets "x".
func probeTarget(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{$}", "")
	for strings.Contains(path, "{") {
		i := strings.Index(path, "{")
		j := strings.Index(path[i:], "}")
		path = path[:i] + "1" + path[i+j+1:]
	}
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "x"
	}
	return method, path
}

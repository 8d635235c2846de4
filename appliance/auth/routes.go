package auth

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

	// Audit trail.
	"GET /audit":                    AuditRead,
	"GET /api/v1/audit":             AuditRead,
	"GET /api/v1/audit/verify":      AuditRead,
	"GET /api/v1/audit/checkpoints": AuditRead,
	"GET /api/v1/audit/export":      AuditExport,

	// Compliance reports.
	"GET /compliance":            ComplianceRead,
	"GET /compliance/report":     ComplianceRead,
	"GET /api/v1/compliance":     ComplianceRead,
	"GET /api/v1/compliance.csv": ComplianceRead,
}

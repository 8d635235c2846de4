// Package auth decides who may do what on the admin listener: local users with argon2id
// passwords and TOTP (with replay protection and recovery codes), roles and the
// permissions they grant, sessions (HttpOnly, SameSite=Strict, idle and absolute expiry,
// a new ID at login and after MFA), login throttling with lockout, API tokens scoped to
// one role, a first-run setup from a one-time token and time-bound break-glass
// elevation. Every change it makes is an audit record written in the same transaction
// (audit.Log.Apply). Approvals and patch exceptions belong to appliance/rollout; auth
// decides who may use their routes and lends them its form handling (Forms).
//
// Guard wraps the admin mux: every request's matched route pattern is looked up in one
// route → permission table (Routes); a route missing from it is refused, and so is a
// principal without the permission. Cross-origin unsafe requests are refused
// (http.CrossOriginProtection).
package auth

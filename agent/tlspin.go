package agent

import "github.com/patchgate/patchgate/agentapi/clienttls"

// On the road the agent talks HTTPS to the appliance's agent listener (agentapi/clienttls,
// shared with a child appliance's link to its parent):
//
//   - the appliance's certificate is pinned at enrolment: its SHA-256 fingerprint
//     (appliance_fingerprint in the config, the same fingerprint the appliance logs,
//     or else verified by ca_file or the system's roots) is kept in
//     state_dir/appliance.pin, and every later connection must present exactly that
//     certificate. A changed certificate is refused with ErrPinMismatch, with no
//     fallback to any CA.
//   - the agent has its own client certificate (mTLS): a P-256 key made on the
//     endpoint (state_dir/client.key, 0600) whose CSR the appliance's agent CA signs at
//     enrolment; renewed when the appliance says so at check-in (judged on the
//     appliance's clock, so an endpoint whose clock is far off still renews in time).

// ErrPinMismatch means the appliance presented a certificate other than the one
// pinned at enrolment.
var ErrPinMismatch = clienttls.ErrPinMismatch

func normFingerprint(s string) string { return clienttls.NormFingerprint(s) }

func loadTLSState(dir, expected string) (*clienttls.State, error) {
	return clienttls.Load(clienttls.Options{Dir: dir, Fingerprint: expected, Op: "agent: tls", FingerprintKey: "appliance_fingerprint"})
}

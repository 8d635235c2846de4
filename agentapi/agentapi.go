// Package agentapi holds the JSON bodies of the agent API v1, the contract between the
// endpoint agent (package agent) and the appliance (appliance/rollout), which both
// import these types so the two sides cannot drift apart. The contract itself, with every
// route and status code, is written in appliance/rollout/README.md. It imports nothing
// of the project's; any package may import it.
//
// Within v1, fields may be added to responses (clients ignore unknown fields) and
// unknown request fields are ignored; nothing is removed or changes meaning. Times are
// UTC and omitted when absent; durations are whole seconds in fields named *_seconds.
package agentapi

import "time"

// Facts are what an agent reports about its device at check-in (and, in part, at
// enrolment). Only Hostname is required; see Validate for the bounds.
type Facts struct {
	Hostname     string    `json:"hostname"`
	OS           string    `json:"os,omitempty"`
	OSVersion    string    `json:"os_version,omitempty"`
	OSBuild      string    `json:"os_build,omitempty"`
	Arch         string    `json:"arch,omitempty"`
	AgentVersion string    `json:"agent_version,omitempty"`
	Serial       string    `json:"serial,omitempty"`
	Packages     []Package `json:"packages,omitempty"`
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// EnrollRequest is the body of POST /agent/v1/enroll: the enrolment token and the
// device's facts, side by side in one object.
type EnrollRequest struct {
	Token string `json:"token"`
	// CSR is a PEM certificate request for the agent's client certificate (mTLS);
	// empty: the agent asks for none.
	CSR string `json:"csr,omitempty"`
	Facts
}

// EnrollResponse is the answer to an enrolment. The credential is shown only here.
type EnrollResponse struct {
	AgentID             string `json:"agent_id"`
	Credential          string `json:"credential"`
	PollIntervalSeconds int64  `json:"poll_interval_seconds"`
	// ClientCert is the PEM client certificate issued for the enrolment's CSR (empty
	// when none was asked for or the appliance has no agent CA).
	ClientCert string `json:"client_cert,omitempty"`
}

// RenewRequest is the body of POST /agent/v1/certificate: a new CSR, sent by an
// enrolled agent over mTLS with its current certificate before that one expires.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// RenewResponse is the answer to a renewal: the new PEM client certificate.
type RenewResponse struct {
	ClientCert string `json:"client_cert"`
}

// OffersResponse is the answer to POST /agent/v1/checkin (with AgentID and AssetID)
// and to GET /agent/v1/deployments (without them). Ring is empty when the device is in
// no ring.
type OffersResponse struct {
	AgentID             string  `json:"agent_id,omitempty"`
	AssetID             string  `json:"asset_id,omitempty"`
	Ring                string  `json:"ring"`
	PollIntervalSeconds int64   `json:"poll_interval_seconds"`
	Deployments         []Offer `json:"deployments"`
	// RenewCertificate is set when the client certificate the agent presented is past
	// two thirds of its life by the appliance's clock (so an endpoint whose clock is off
	// still renews in time).
	RenewCertificate bool `json:"renew_certificate,omitempty"`
}

// Offer is one deployment the appliance wants the agent to work on.
type Offer struct {
	ID              int64         `json:"id"`
	RolloutID       int64         `json:"rollout_id"`
	Release         OfferRelease  `json:"release"`
	Repo            string        `json:"repo"`
	Targets         []OfferTarget `json:"targets"`
	State           string        `json:"state"` // one of the State constants
	Attempt         int           `json:"attempt"`
	MaxAttempts     int           `json:"max_attempts"`
	DownloadAllowed bool          `json:"download_allowed"`
	InstallAllowed  bool          `json:"install_allowed"`
	Window          OfferWindow   `json:"window"`
	Deadline        time.Time     `json:"deadline,omitzero"`
	// RetryAfterSeconds says when to ask again if something is not allowed now (0 when
	// everything is).
	RetryAfterSeconds int64 `json:"retry_after_seconds"`
}

// OfferRelease is the part of a release an agent needs.
type OfferRelease struct {
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	Version        string   `json:"version,omitempty"`
	Severity       string   `json:"severity"`
	CVEs           []string `json:"cves"`
	KnownExploited bool     `json:"known_exploited"`
}

// OfferTarget is one TUF target of an offer and the URL path to download it at,
// relative to the appliance's distribution URL.
type OfferTarget struct {
	Path string `json:"path"`
	URL  string `json:"url"`
}

// OfferWindow is the device's maintenance window as the appliance sees it: whether it
// is open now, and the current or next opening (omitted when the device has none).
type OfferWindow struct {
	Open     bool      `json:"open"`
	OpensAt  time.Time `json:"opens_at,omitzero"`
	ClosesAt time.Time `json:"closes_at,omitzero"`
}

// The states an offer is in; the last three are what an agent reports as progress.
const (
	StateOffered     = "offered"
	StateDownloading = "downloading"
	StateDownloaded  = "downloaded"
	StateInstalling  = "installing"
)

// ProgressRequest is the body of POST /agent/v1/deployments/{id}/progress.
type ProgressRequest struct {
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// ProgressResponse is the answer to a progress report: the deployment's state now.
type ProgressResponse struct {
	State string `json:"state"`
}

// The statuses of an outcome.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// OutcomeRequest is the body of POST /agent/v1/deployments/{id}/outcome, an agent's
// final report on one attempt. ExitCode is nil when the report has none.
type OutcomeRequest struct {
	Status   string `json:"status"` // one of the Outcome constants
	ExitCode *int   `json:"exit_code"`
	LogTail  string `json:"log_tail,omitempty"`
	Detail   string `json:"detail,omitempty"`
	// Checks are the pre-checks run for this attempt, with their values (a postponed
	// outcome has at least one that failed).
	Checks []Check `json:"checks,omitempty"`
	// RestorePoint is what the pre-install restore point step did (nil: not reached).
	RestorePoint *RestorePoint `json:"restore_point,omitempty"`
}

// OutcomeResponse is the answer to an outcome report. RetryAt is set when a failed
// deployment will be offered again.
type OutcomeResponse struct {
	State       string    `json:"state"`
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
}

// Error is the body of every error answer; RetryAfterSeconds is set when asking again
// later may succeed.
type Error struct {
	Error             string `json:"error"`
	RetryAfterSeconds int64  `json:"retry_after_seconds,omitempty"`
}

package agent

import "time"

// The JSON bodies of the agent API v1 (appliance/rollout/README.md). Unknown response
// fields are ignored, as the contract asks.

// EnrollRequest is POST /agent/v1/enroll.
type EnrollRequest struct {
	Token        string `json:"token"`
	Hostname     string `json:"hostname"`
	OS           string `json:"os,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	Arch         string `json:"arch,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// EnrollResponse is the answer to an enrolment.
type EnrollResponse struct {
	AgentID             string `json:"agent_id"`
	Credential          string `json:"credential"`
	PollIntervalSeconds int    `json:"poll_interval_seconds"`
}

// Facts are what the agent reports about its device at check-in.
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

// CheckinResponse is the answer to POST /agent/v1/checkin.
type CheckinResponse struct {
	AgentID             string  `json:"agent_id"`
	AssetID             string  `json:"asset_id"`
	Ring                string  `json:"ring"`
	PollIntervalSeconds int     `json:"poll_interval_seconds"`
	Deployments         []Offer `json:"deployments"`
}

// Offer is one deployment the appliance wants this agent to work on.
type Offer struct {
	ID              int64         `json:"id"`
	RolloutID       int64         `json:"rollout_id"`
	Release         OfferRelease  `json:"release"`
	Repo            string        `json:"repo"`
	Targets         []OfferTarget `json:"targets"`
	State           string        `json:"state"`
	Attempt         int           `json:"attempt"`
	MaxAttempts     int           `json:"max_attempts"`
	DownloadAllowed bool          `json:"download_allowed"`
	InstallAllowed  bool          `json:"install_allowed"`
	Window          OfferWindow   `json:"window"`
	Deadline        time.Time     `json:"deadline,omitzero"`
	RetryAfter      int           `json:"retry_after_seconds"`
}

// OfferRelease describes the release of an offer.
type OfferRelease struct {
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	Version        string   `json:"version"`
	Severity       string   `json:"severity"`
	CVEs           []string `json:"cves"`
	KnownExploited bool     `json:"known_exploited"`
}

// OfferTarget is one TUF target of an offer and where to download it, relative to the
// appliance's distribution URL.
type OfferTarget struct {
	Path string `json:"path"`
	URL  string `json:"url"`
}

// OfferWindow is the device's maintenance window as the appliance sees it.
type OfferWindow struct {
	Open     bool      `json:"open"`
	OpensAt  time.Time `json:"opens_at,omitzero"`
	ClosesAt time.Time `json:"closes_at,omitzero"`
}

// DeploymentsResponse is the answer to GET /agent/v1/deployments.
type DeploymentsResponse struct {
	PollIntervalSeconds int     `json:"poll_interval_seconds"`
	Deployments         []Offer `json:"deployments"`
}

// Progress states an agent reports.
const (
	StateDownloading = "downloading"
	StateDownloaded  = "downloaded"
	StateInstalling  = "installing"
)

// ProgressRequest is POST /agent/v1/deployments/{id}/progress.
type ProgressRequest struct {
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Outcome statuses.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// OutcomeRequest is POST /agent/v1/deployments/{id}/outcome.
type OutcomeRequest struct {
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code"`
	LogTail  string `json:"log_tail,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// OutcomeResponse is the answer to an outcome report.
type OutcomeResponse struct {
	State       string    `json:"state"`
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
}

// errorBody is the API's error answer.
type errorBody struct {
	Error      string `json:"error"`
	RetryAfter int    `json:"retry_after_seconds"`
}

package agentapi

// OutcomePostponed is an outcome that is not a result: the device was not ready (a
// pre-check failed) and the agent tries again later within the window. The appliance
// records it and keeps the deployment open; it does not count as an attempt.
const OutcomePostponed = "postponed"

// The pre-checks an agent runs before downloading or installing (Check.Name).
const (
	CheckDiskFree  = "disk_free" // bytes free vs the release's need
	CheckPower     = "power"     // on AC, or battery at or above the threshold
	CheckAppliance = "appliance" // the appliance answered this round
	CheckCommand   = "command"   // the configured check command exited 0
	CheckClock     = "clock"     // the endpoint's clock is close to the appliance's
)

// Check is one pre-check's result with its values, e.g. disk_free "12884901888" need
// "104857600"; power "battery 23%" need "AC or >= 40%".
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Value  string `json:"value,omitempty"`
	Need   string `json:"need,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// The statuses of a restore point taken before an install.
const (
	RestoreCreated     = "created"     // the OS made the restore point or snapshot
	RestoreFailed      = "failed"      // the step ran and failed
	RestoreUnavailable = "unavailable" // no mechanism on this device
	RestoreDisabled    = "disabled"    // turned off in the agent's config
)

// RestorePoint is what the pre-install restore point step did.
type RestorePoint struct {
	Status string `json:"status"`
	Method string `json:"method,omitempty"` // e.g. "Checkpoint-Computer", "tmutil localsnapshot", "snapper"
	Detail string `json:"detail,omitempty"`
}

// DetailRestorePoint prefixes a failed outcome caused by a restore point the release
// requires that could not be made (no install command ran).
const DetailRestorePoint = "restore point failed: "

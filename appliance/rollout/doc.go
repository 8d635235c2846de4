// Package rollout hands patches out in stages: releases (what to install, how urgent),
// rings (which devices go first), maintenance windows (when devices may install), the
// SLA policy (by when each device must have a release), rollouts that move a release
// through the rings under success and error thresholds with soak times and approvals,
// and one deployment per device and release with every transition time-stamped.
//
// Its Gate decides, for each target request reaching the distribution listener, whether
// the requesting device may have the bytes now (serve), later (503 with Retry-After =
// the next opening) or not at all (403: a device in no ring, or a target no approved
// rollout releases). Its agent API enrols endpoint agents and tells them what to
// install and when; its admin API is what people and the CLI drive rollouts with. Its
// Pages serve the approvals (the approval guard in front of the engine) and the patch
// exceptions that excuse an asset or ring from a release or CVE for a while.
//
// Time comes from an appliance/clock.Clock everywhere, so windows, soak times,
// deadlines and retries are tested with a fake clock.
package rollout

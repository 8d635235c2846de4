// Package compliance turns the rollout and inventory records into the evidence a site's
// auditor asks for: patch coverage by severity, ring, segment and device type; the share
// patched within the SLA; time to patch (median, p90) by severity; overdue assets by
// age; open known-exploited items; failed-update rate per ring; open exceptions; approval
// latency; MFA coverage of the accounts that can change things. Trends are drawn by the
// server as inline SVG (the appliance has no internet; no scripts). A printable report
// per cycle (a calendar month) maps each section to the HIPAA Security Rule safeguard it
// evidences.
//
// The package reads through small interfaces (Source, Exceptions, MFA) that the
// appliance fills from the rollout engine, the inventory and auth.
package compliance

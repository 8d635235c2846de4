// Package advisory takes in vulnerability advisories — the CISA Known Exploited
// Vulnerabilities catalog, vendors' CSAF 2.0 advisories (provider metadata, signed
// documents) and OSV records for the packages agents report — on a schedule or by
// offline import, and matches them against the inventory: per asset the open
// vulnerabilities, their severity, whether they are exploited, the release that fixes
// them and their deadline. Every match keeps its evidence; an ambiguous one is shown as
// such and never counted as an open finding.
package advisory

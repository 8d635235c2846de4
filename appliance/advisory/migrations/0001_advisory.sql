-- Advisory data as each feed or import last delivered it, normalised (JSON); replaced
-- only by a delivery that was complete and verified, so a bad fetch keeps the previous.
CREATE TABLE advisory_data (
	source     TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	version    TEXT NOT NULL DEFAULT '',
	fetched_at TEXT NOT NULL,
	body       TEXT NOT NULL
);
-- The packages each agent last reported, with the OSV ecosystem of its OS.
CREATE TABLE advisory_packages (
	agent_id   TEXT PRIMARY KEY,
	ecosystem  TEXT NOT NULL,
	packages   TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
-- Findings: one asset concerned by one vulnerability, from the first match until it
-- no longer matches (closed, with the release that fixes it when one was staged).
CREATE TABLE advisory_findings (
	asset_id     TEXT NOT NULL,
	vuln         TEXT NOT NULL,
	asset        TEXT NOT NULL,
	match        TEXT NOT NULL, -- the Match as JSON (feed, evidence, severity...)
	severity     TEXT NOT NULL,
	exploited    INTEGER NOT NULL,
	ambiguous    INTEGER NOT NULL,
	release_id   TEXT NOT NULL DEFAULT '',
	release_name TEXT NOT NULL DEFAULT '',
	first_seen   TEXT NOT NULL,
	last_seen    TEXT NOT NULL,
	closed_at    TEXT NOT NULL DEFAULT '',
	notified     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (asset_id, vuln)
);
CREATE INDEX advisory_findings_open ON advisory_findings(closed_at, asset_id);

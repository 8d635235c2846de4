-- Rings, maintenance windows, releases, rollouts with their stages and approvals,
-- deployments, agents and enrolment tokens, and the transition history.
-- Times are fixed-width UTC text (2006-01-02T15:04:05.000000000Z, so they sort as
-- text); '' for none. Lists and maps are JSON text.

CREATE TABLE rollout_rings (
	name       TEXT PRIMARY KEY,
	ord        INTEGER NOT NULL,
	selector   TEXT NOT NULL DEFAULT '{}',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

CREATE TABLE rollout_windows (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	cron       TEXT NOT NULL,
	duration_s INTEGER NOT NULL,
	zone       TEXT NOT NULL,
	from_day   TEXT NOT NULL DEFAULT '',
	until_day  TEXT NOT NULL DEFAULT '',
	ring       TEXT NOT NULL DEFAULT '',
	segment    TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);

CREATE TABLE rollout_releases (
	id              INTEGER PRIMARY KEY,
	name            TEXT NOT NULL,
	version         TEXT NOT NULL DEFAULT '',
	repo            TEXT NOT NULL,
	targets         TEXT NOT NULL,
	severity        TEXT NOT NULL CHECK (severity IN ('critical','high','medium','low')),
	cves            TEXT NOT NULL DEFAULT '[]',
	known_exploited INTEGER NOT NULL DEFAULT 0,
	kev_due         TEXT NOT NULL DEFAULT '',
	published       TEXT NOT NULL,
	notes           TEXT NOT NULL DEFAULT '',
	created_by      TEXT NOT NULL,
	created_at      TEXT NOT NULL
);

CREATE TABLE rollouts (
	id               INTEGER PRIMARY KEY,
	name             TEXT NOT NULL,
	release_id       INTEGER NOT NULL REFERENCES rollout_releases(id),
	state            TEXT NOT NULL,
	emergency        INTEGER NOT NULL DEFAULT 0,
	current_stage    INTEGER NOT NULL DEFAULT 0,
	start_at         TEXT NOT NULL DEFAULT '',
	reason           TEXT NOT NULL DEFAULT '',
	risk             TEXT NOT NULL DEFAULT '',
	test_evidence    TEXT NOT NULL DEFAULT '',
	rollback_plan    TEXT NOT NULL DEFAULT '',
	created_by       TEXT NOT NULL,
	requested_by     TEXT NOT NULL DEFAULT '',
	approvals_needed INTEGER NOT NULL DEFAULT 1,
	created_at       TEXT NOT NULL,
	updated_at       TEXT NOT NULL,
	state_at         TEXT NOT NULL,
	prefetched_at    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollouts_state ON rollouts(state);

CREATE TABLE rollout_stages (
	rollout_id      INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
	idx             INTEGER NOT NULL,
	ring            TEXT NOT NULL,
	success_percent REAL NOT NULL,
	error_percent   REAL NOT NULL,
	min_results     INTEGER NOT NULL,
	soak_s          INTEGER NOT NULL,
	max_concurrent  INTEGER NOT NULL,
	prestage        INTEGER NOT NULL,
	started_at      TEXT NOT NULL DEFAULT '',
	met_at          TEXT NOT NULL DEFAULT '',
	errors_since    TEXT NOT NULL DEFAULT '',
	done_at         TEXT NOT NULL DEFAULT '',
	forced_by       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (rollout_id, idx)
);

CREATE TABLE rollout_approvals (
	rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	approver   TEXT NOT NULL,
	at         TEXT NOT NULL,
	remark     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (rollout_id, approver)
);

CREATE TABLE rollout_deployments (
	id           INTEGER PRIMARY KEY,
	rollout_id   INTEGER NOT NULL REFERENCES rollouts(id),
	release_id   INTEGER NOT NULL REFERENCES rollout_releases(id),
	asset_id     TEXT NOT NULL,
	asset_name   TEXT NOT NULL DEFAULT '',
	agent_id     TEXT NOT NULL DEFAULT '',
	ring         TEXT NOT NULL,
	state        TEXT NOT NULL,
	state_at     TEXT NOT NULL,
	times        TEXT NOT NULL DEFAULT '{}',
	attempt      INTEGER NOT NULL DEFAULT 1,
	max_attempts INTEGER NOT NULL,
	retry_at     TEXT NOT NULL DEFAULT '',
	result_at    TEXT NOT NULL DEFAULT '',
	since        TEXT NOT NULL DEFAULT '',
	deadline     TEXT NOT NULL,
	exit_code    INTEGER,
	log_tail     TEXT NOT NULL DEFAULT '',
	detail       TEXT NOT NULL DEFAULT '',
	delivered    TEXT NOT NULL DEFAULT '[]',
	UNIQUE (rollout_id, asset_id)
);
CREATE INDEX rollout_deployments_asset ON rollout_deployments(asset_id, state);
CREATE INDEX rollout_deployments_state ON rollout_deployments(rollout_id, ring, state);

CREATE TABLE rollout_events (
	id            INTEGER PRIMARY KEY,
	at            TEXT NOT NULL,
	actor         TEXT NOT NULL,
	action        TEXT NOT NULL,
	object        TEXT NOT NULL,
	rollout_id    INTEGER,
	deployment_id INTEGER,
	details       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX rollout_events_rollout ON rollout_events(rollout_id, id);

CREATE TABLE rollout_enrolment_tokens (
	id         TEXT PRIMARY KEY,
	secret_sha TEXT NOT NULL,
	name       TEXT NOT NULL,
	ring       TEXT NOT NULL DEFAULT '',
	tags       TEXT NOT NULL DEFAULT '[]',
	expires_at TEXT NOT NULL,
	max_uses   INTEGER NOT NULL,
	uses       INTEGER NOT NULL DEFAULT 0,
	created_by TEXT NOT NULL,
	created_at TEXT NOT NULL,
	revoked_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE rollout_agents (
	id          TEXT PRIMARY KEY,
	secret_sha  TEXT NOT NULL,
	token_id    TEXT NOT NULL,
	hostname    TEXT NOT NULL,
	ring        TEXT NOT NULL DEFAULT '',
	tags        TEXT NOT NULL DEFAULT '[]',
	facts       TEXT NOT NULL DEFAULT '{}',
	enrolled_at TEXT NOT NULL,
	last_seen   TEXT NOT NULL DEFAULT '',
	last_addr   TEXT NOT NULL DEFAULT '',
	revoked_at  TEXT NOT NULL DEFAULT ''
);

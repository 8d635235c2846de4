CREATE TABLE auth_users (
	name                TEXT PRIMARY KEY,
	roles               TEXT NOT NULL,
	password            TEXT NOT NULL,
	totp_secret         TEXT NOT NULL DEFAULT '',
	totp_last_step      INTEGER NOT NULL DEFAULT 0,
	disabled            INTEGER NOT NULL DEFAULT 0,
	failures            INTEGER NOT NULL DEFAULT 0,
	locked_until        TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	created_by          TEXT NOT NULL
);

CREATE TABLE auth_recovery_codes (
	user    TEXT NOT NULL REFERENCES auth_users(name),
	hash    TEXT NOT NULL,
	used_at TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (user, hash)
);

CREATE TABLE auth_tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	role       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	last_used  TEXT NOT NULL DEFAULT '',
	revoked_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE auth_exceptions (
	id            INTEGER PRIMARY KEY,
	asset         TEXT NOT NULL DEFAULT '',
	ring          TEXT NOT NULL DEFAULT '',
	release       TEXT NOT NULL DEFAULT '',
	cve           TEXT NOT NULL DEFAULT '',
	reason        TEXT NOT NULL,
	controls      TEXT NOT NULL,
	state         TEXT NOT NULL,
	requested_by  TEXT NOT NULL,
	requested_at  TEXT NOT NULL,
	decided_by    TEXT NOT NULL DEFAULT '',
	decided_at    TEXT NOT NULL DEFAULT '',
	remark        TEXT NOT NULL DEFAULT '',
	expires_at    TEXT NOT NULL,
	review_at     TEXT NOT NULL,
	reviewed_by   TEXT NOT NULL DEFAULT '',
	reviewed_at   TEXT NOT NULL DEFAULT '',
	closed_by     TEXT NOT NULL DEFAULT '',
	closed_at     TEXT NOT NULL DEFAULT ''
);

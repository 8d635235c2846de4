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

-- auth_exceptions was created here until exceptions moved to appliance/rollout, whose
-- migration 0002 creates it where it is missing (databases made before keep theirs).

-- Patch exceptions (exceptions.go). The table keeps the name it had when auth held
-- exceptions: databases made before the move have it, with their rows, from auth's first
-- migration, so it is created only where it is missing. Times are RFC 3339 text with
-- nanoseconds, as written since the table was made; '' for none.

CREATE TABLE IF NOT EXISTS auth_exceptions (
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

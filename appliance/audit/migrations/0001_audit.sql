-- The audit trail: append-only. Records are never updated, and none younger than six
-- years can be deleted (HIPAA's documentation retention, 45 CFR 164.316(b)(2)).
CREATE TABLE audit_records (
	seq         INTEGER PRIMARY KEY,
	time        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	role        TEXT NOT NULL DEFAULT '',
	auth_method TEXT NOT NULL DEFAULT '',
	source      TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	object      TEXT NOT NULL DEFAULT '',
	before      TEXT NOT NULL DEFAULT '',
	after       TEXT NOT NULL DEFAULT '',
	details     TEXT NOT NULL DEFAULT '',
	prev        TEXT NOT NULL,
	hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_records_time ON audit_records(time);
CREATE INDEX audit_records_action ON audit_records(action);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_records_retention BEFORE DELETE ON audit_records
WHEN old.time > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-6 years')
BEGIN
	SELECT RAISE(ABORT, 'audit records are kept for six years');
END;

CREATE TABLE audit_checkpoints (
	size      INTEGER PRIMARY KEY,
	time      TEXT NOT NULL,
	root      TEXT NOT NULL,
	last_hash TEXT NOT NULL,
	key_id    TEXT NOT NULL,
	signature TEXT NOT NULL
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

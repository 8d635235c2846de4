-- Small-team approvals (review.go): a rollout its requester approved under the
-- self_with_review policy waits here for another account's countersignature until due_at.
-- Times are RFC 3339 text; '' for none. rollout_settings keeps the approval policy last
-- recorded in the audit trail, so a change of policy is recorded once.

CREATE TABLE rollout_reviews (
	id               INTEGER PRIMARY KEY,
	rollout_id       INTEGER NOT NULL,
	rollout_name     TEXT NOT NULL,
	emergency        INTEGER NOT NULL,
	approved_by      TEXT NOT NULL,
	approved_at      TEXT NOT NULL,
	justification    TEXT NOT NULL,
	due_at           TEXT NOT NULL,
	countersigned_by TEXT NOT NULL DEFAULT '',
	countersigned_at TEXT NOT NULL DEFAULT '',
	remark           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollout_reviews_open ON rollout_reviews(countersigned_at, due_at);

CREATE TABLE rollout_settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

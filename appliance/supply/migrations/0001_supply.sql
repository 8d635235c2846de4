-- Candidates: each verified file a source offered, with its provenance. The bytes are
-- staged under STATE/supply/objects/SHA256; nothing unverified is ever written here.
CREATE TABLE supply_candidates (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	source       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	name         TEXT NOT NULL,
	version      TEXT NOT NULL DEFAULT '',
	url          TEXT NOT NULL,
	verification TEXT NOT NULL,
	fetched_at   TEXT NOT NULL,
	size         INTEGER NOT NULL,
	sha256       TEXT NOT NULL,
	sha512       TEXT NOT NULL,
	UNIQUE (source, name, sha256)
);
CREATE INDEX supply_candidates_source ON supply_candidates(source, id);

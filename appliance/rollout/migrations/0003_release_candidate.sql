-- A release made from a vendor candidate (appliance/supply) records it: candidate_id
-- (one release per candidate) and its provenance as JSON.
ALTER TABLE rollout_releases ADD COLUMN candidate_id INTEGER;
ALTER TABLE rollout_releases ADD COLUMN candidate TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX rollout_releases_candidate ON rollout_releases(candidate_id);

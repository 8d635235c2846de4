-- Assets as discovery sees them. Columns with obs_ are derived from the facts by the
-- fingerprint rules and rewritten on every merge; admin-set values live apart, in
-- inventory_admin, which observations never write.
CREATE TABLE inventory_assets (
	id                  TEXT PRIMARY KEY,
	key_kind            TEXT NOT NULL,
	mac                 TEXT NOT NULL DEFAULT '',
	random_mac          INTEGER NOT NULL DEFAULT 0,
	addresses           TEXT NOT NULL DEFAULT '[]',
	obs_hostname        TEXT NOT NULL DEFAULT '',
	obs_serial          TEXT NOT NULL DEFAULT '',
	obs_type            TEXT NOT NULL DEFAULT 'unknown',
	obs_type_confidence REAL NOT NULL DEFAULT 0,
	obs_vendor          TEXT NOT NULL DEFAULT '',
	obs_model           TEXT NOT NULL DEFAULT '',
	obs_os              TEXT NOT NULL DEFAULT '',
	obs_firmware        TEXT NOT NULL DEFAULT '',
	facts               TEXT NOT NULL DEFAULT '[]',
	evidence            TEXT NOT NULL DEFAULT '{}',
	sources             TEXT NOT NULL DEFAULT '[]',
	first_seen          TEXT NOT NULL,
	last_seen           TEXT NOT NULL
);

-- What administrators say about an asset: owner, ring, criticality... and overrides of
-- observed attributes. One JSON object per asset.
CREATE TABLE inventory_admin (
	asset_id   TEXT PRIMARY KEY REFERENCES inventory_assets(id) ON DELETE CASCADE,
	attrs      TEXT NOT NULL DEFAULT '{}',
	updated_at TEXT NOT NULL,
	updated_by TEXT NOT NULL
);

-- Stable identifiers (universally administered MAC, serial, SNMP engine ID, UPnP UDN,
-- DHCP client ID, ...) and the asset each belongs to.
CREATE TABLE inventory_ids (
	kind     TEXT NOT NULL,
	value    TEXT NOT NULL,
	asset_id TEXT NOT NULL REFERENCES inventory_assets(id) ON DELETE CASCADE,
	PRIMARY KEY (kind, value)
);
CREATE INDEX inventory_ids_asset ON inventory_ids(asset_id);

-- Devices seen only by a locally administered (random) MAC: never an asset on that
-- alone. A sighting becomes part of an asset once a stable identifier shows up with
-- the same MAC.
CREATE TABLE inventory_sightings (
	mac        TEXT PRIMARY KEY,
	addr       TEXT NOT NULL DEFAULT '',
	facts      TEXT NOT NULL DEFAULT '[]',
	sources    TEXT NOT NULL DEFAULT '[]',
	first_seen TEXT NOT NULL,
	last_seen  TEXT NOT NULL
);

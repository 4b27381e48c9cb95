-- The embedded store's schema. Times are Unix nanoseconds (UTC).
-- events: every accepted event, with the session it belongs to.
CREATE TABLE IF NOT EXISTS events (
	tenant      TEXT    NOT NULL,
	event_id    TEXT    NOT NULL,
	session_key TEXT    NOT NULL,
	session_id  TEXT    NOT NULL,
	occurred_at INTEGER NOT NULL,
	type        TEXT    NOT NULL,
	body        BLOB    NOT NULL,
	PRIMARY KEY (tenant, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_key ON events (tenant, session_key, occurred_at);
CREATE INDEX IF NOT EXISTS events_by_session ON events (tenant, session_id, occurred_at, event_id);

-- sessions: one row per session; doc is the session summary as JSON, the
-- other columns are what filters and order need.
CREATE TABLE IF NOT EXISTS sessions (
	tenant               TEXT    NOT NULL,
	session_id           TEXT    NOT NULL,
	session_key          TEXT    NOT NULL,
	started_at           INTEGER NOT NULL,
	channel              TEXT    NOT NULL,
	contact_id           TEXT    NOT NULL,
	contact_phone_digits TEXT    NOT NULL,
	contact_name_lower   TEXT    NOT NULL,
	handed_off           INTEGER NOT NULL,
	doc                  BLOB    NOT NULL,
	PRIMARY KEY (tenant, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_start ON sessions (tenant, started_at DESC, session_id DESC);
CREATE INDEX IF NOT EXISTS sessions_by_key ON sessions (tenant, session_key, started_at);

CREATE TABLE IF NOT EXISTS session_tags (
	tenant     TEXT NOT NULL,
	session_id TEXT NOT NULL,
	tag        TEXT NOT NULL,
	PRIMARY KEY (tenant, session_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_tags_by_tag ON session_tags (tenant, tag);

CREATE TABLE IF NOT EXISTS session_protocols (
	tenant     TEXT NOT NULL,
	session_id TEXT NOT NULL,
	protocol   TEXT NOT NULL,
	PRIMARY KEY (tenant, session_id, protocol)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_protocols_by_protocol ON session_protocols (tenant, protocol);

CREATE TABLE IF NOT EXISTS session_info (
	tenant      TEXT NOT NULL,
	session_id  TEXT NOT NULL,
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	value_lower TEXT NOT NULL,
	PRIMARY KEY (tenant, session_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_info_by_key ON session_info (tenant, key, value_lower);

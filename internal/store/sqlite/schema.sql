-- The embedded store's schema. Times are Unix milliseconds (UTC): events are
-- kept to the millisecond, and an int64 of milliseconds holds any year.
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

-- message_words: full-text index of message texts, for the report's q filter.
-- Why FTS5 and not lower(text): SQLite's lower() and LIKE fold ASCII only, so
-- "NÃO" would not find "não". The unicode61 tokenizer folds case for all of
-- Unicode and, with remove_diacritics 2, accents too ("nao" finds "NÃO"), and
-- matching indexed words scales where scanning every message text does not.
-- The index is contentless (the text stays only in events.body); message_rows
-- maps its rowids to events. Neither holds a session id: queries join back to
-- events, whose session_id is the one truth, so events that move between
-- sessions (session.Changes) need no upkeep here. Events are never rewritten,
-- only re-assigned, so each message is indexed once, by the trigger below,
-- when it is first inserted (an upsert that takes its DO UPDATE path fires no
-- INSERT trigger). contentless_delete leaves room to erase a contact.
CREATE VIRTUAL TABLE IF NOT EXISTS message_words USING fts5(
	text,
	content = '',
	contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS message_rows (
	id       INTEGER PRIMARY KEY,
	tenant   TEXT NOT NULL,
	event_id TEXT NOT NULL,
	UNIQUE (tenant, event_id)
);
CREATE TRIGGER IF NOT EXISTS events_index_words AFTER INSERT ON events
WHEN new.type = 'message' AND coalesce(json_extract(CAST(new.body AS TEXT), '$.text'), '') <> ''
BEGIN
	INSERT INTO message_rows (tenant, event_id) VALUES (new.tenant, new.event_id);
	INSERT INTO message_words (rowid, text)
	VALUES (last_insert_rowid(), json_extract(CAST(new.body AS TEXT), '$.text'));
END;

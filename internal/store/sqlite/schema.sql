-- The embedded store's schema. Times are Unix milliseconds (UTC): events are
-- kept to the millisecond, and an int64 of milliseconds holds any year.
-- events: every accepted event, with the session it belongs to. A rowid table:
-- rows are appended in arrival order, so the wide rows (the JSON body) fill
-- pages at the end instead of splitting random ones, and only the two narrow
-- indexes take random inserts. The rowid is also the event's row in the
-- full-text index. A session's events are the events of its key between its
-- start and its last activity (see the store's details), so no index by
-- session id is kept.
--
-- ref is a 64-bit hash of (tenant, event_id) (refOf in store.go; 0 only
-- while a migration fills it), and events_by_ref_hash finds an event by its
-- identity through it: an event id is unique per tenant, which the store
-- checks before it inserts (a look-up of the refs, then the ids compared).
-- Event ids are random, so each new event's entry lands on a random page of
-- this index: 8 bytes and the rowid make it half the size of an index of
-- (tenant, event_id) strings, and a batch, which rewrites most of its pages
-- while it is small, rewrites half as many.
CREATE TABLE IF NOT EXISTS events (
	id          INTEGER PRIMARY KEY,
	tenant      TEXT    NOT NULL,
	event_id    TEXT    NOT NULL,
	session_key TEXT    NOT NULL,
	session_id  TEXT    NOT NULL,
	occurred_at INTEGER NOT NULL,
	type        TEXT    NOT NULL,
	body        BLOB    NOT NULL,
	ref         INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS events_by_ref;
CREATE INDEX IF NOT EXISTS events_by_ref_hash ON events (ref);
CREATE INDEX IF NOT EXISTS events_by_key_time ON events (tenant, session_key, occurred_at, event_id);

-- sessions: one row per session; doc is the session summary as JSON, the
-- other columns are what filters and order need. contact_phone_rev is the
-- phone's digits reversed: "the stored number ends with the typed one" is a
-- range of it, "the typed number ends with the stored one" a few values.
CREATE TABLE IF NOT EXISTS sessions (
	tenant               TEXT    NOT NULL,
	session_id           TEXT    NOT NULL,
	session_key          TEXT    NOT NULL,
	started_at           INTEGER NOT NULL,
	channel              TEXT    NOT NULL,
	contact_id           TEXT    NOT NULL,
	contact_phone_rev    TEXT    NOT NULL,
	contact_name_folded  TEXT    NOT NULL, -- report.Fold: lower case without diacritics
	handed_off           INTEGER NOT NULL,
	doc                  BLOB    NOT NULL
);
-- A rowid table, not WITHOUT ROWID: an index b-tree (which a WITHOUT ROWID
-- table is) keeps at most about a quarter of a page of a row on its leaf and
-- the rest on overflow pages, so about half the documents (1-4 KB) took an
-- overflow page of their own, mostly empty; a rowid table's leaf holds a row
-- of up to nearly a page (https://www.sqlite.org/withoutrowid.html section 4,
-- https://www.sqlite.org/fileformat2.html "B-tree Pages"). New sessions are
-- appended in arrival order. sessions_by_id is the key: every look-up and
-- upsert by (tenant, session_id) goes through it to the row.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_by_id ON sessions (tenant, session_id);
-- sessions_by_start_filters is the report's order with the columns its
-- filters read, so that counting and filtering the sessions of an interval
-- reads the index alone, and only the page's sessions' rows (with their
-- documents) are read. A driver (see plan.go) meets the sessions through it
-- too: it yields the first two columns of the key.
DROP INDEX IF EXISTS sessions_by_start;
CREATE INDEX IF NOT EXISTS sessions_by_start_filters ON sessions (tenant, started_at, session_id,
	channel, handed_off, contact_id, contact_phone_rev, contact_name_folded);
-- The other indexes end with session_id, which the contact filter's ranges
-- and Forget read from them (an index of a rowid table carries the rowid,
-- not the key).
CREATE INDEX IF NOT EXISTS sessions_by_key ON sessions (tenant, session_key, started_at, session_id);
-- The contact filter's ranges (query.go, contactCondition): an id, a phone's
-- reversed digits, a folded name.
CREATE INDEX IF NOT EXISTS sessions_by_contact ON sessions (tenant, contact_id, started_at, session_id);
CREATE INDEX IF NOT EXISTS sessions_by_phone ON sessions (tenant, contact_phone_rev, started_at, session_id);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions (tenant, contact_name_folded, started_at, session_id);
-- contact_names: every folded contact name a session of the tenant has had,
-- scanned for a part of a name. Writes only add names (one that no session
-- has any more selects an empty range); Forget removes the forgotten
-- contact's names that no other session has.
CREATE TABLE IF NOT EXISTS contact_names (
	tenant TEXT NOT NULL,
	name   TEXT NOT NULL,
	PRIMARY KEY (tenant, name)
) WITHOUT ROWID;

-- The side tables hold a session's tags, protocols and information, with its
-- started_at, each indexed by value then report order: the sessions of one
-- value in an interval are one index range in the report's order, which a
-- search reads from its newest end and stops, or intersects with another
-- value's range in one merge (plan.go). They carry the session's channel and
-- handed_off, last in each index, so that a range tests those filters
-- without looking each session up; the tags and information keys are also
-- indexed with channel and handed_off before started_at, where a filter
-- asking for both reads only the entries that pass.
CREATE TABLE IF NOT EXISTS session_tags (
	tenant     TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	tag        TEXT    NOT NULL,
	started_at INTEGER NOT NULL,
	channel    TEXT    NOT NULL,
	handed_off INTEGER NOT NULL,
	PRIMARY KEY (tenant, session_id, tag)
) WITHOUT ROWID;
DROP INDEX IF EXISTS session_tags_by_tag;
CREATE INDEX IF NOT EXISTS session_tags_by_value ON session_tags (tenant, tag, started_at, session_id, channel, handed_off);
-- session_tags_by_value_filters: a tag's sessions of one channel and
-- handoff are one range in report order, which a filter asking for both
-- reads instead of testing them on every entry of the tag's range.
CREATE INDEX IF NOT EXISTS session_tags_by_value_filters ON session_tags (tenant, tag, channel, handed_off, started_at, session_id);

-- session_marks holds what the agent, queue and outcome filters read, one row
-- per (kind, value): kind 'agent' (an agent's id), 'queue', 'outcome' (of an
-- attendance that ended) and 'at_end' (the outcome an open attendance takes
-- when its session's window ends, until_ms; session.OutcomeMarks). Only an
-- at_end row's until_ms is read; the other kinds are written with 0 (older
-- rows may hold the window's end), so that a session's new events leave them
-- unchanged.
CREATE TABLE IF NOT EXISTS session_marks (
	tenant     TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	value      TEXT    NOT NULL,
	until_ms   INTEGER NOT NULL,
	PRIMARY KEY (tenant, session_id, kind, value)
) WITHOUT ROWID;
-- The marks drive no search (a condition on them is tested per session, by
-- the primary key), so they have no index by value.
DROP INDEX IF EXISTS session_marks_by_value;

CREATE TABLE IF NOT EXISTS session_protocols (
	tenant     TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	protocol   TEXT    NOT NULL,
	started_at INTEGER NOT NULL,
	channel    TEXT    NOT NULL,
	handed_off INTEGER NOT NULL,
	PRIMARY KEY (tenant, session_id, protocol)
) WITHOUT ROWID;
DROP INDEX IF EXISTS session_protocols_by_protocol;
CREATE INDEX IF NOT EXISTS session_protocols_by_value ON session_protocols (tenant, protocol, started_at, session_id, channel, handed_off);

-- session_info_by_value serves equals and starts_with; session_info_by_key
-- the operators that read every value of a key (exists, contains), with the
-- value beside each entry.
CREATE TABLE IF NOT EXISTS session_info (
	tenant      TEXT    NOT NULL,
	session_id  TEXT    NOT NULL,
	key         TEXT    NOT NULL,
	value       TEXT    NOT NULL,
	value_lower TEXT    NOT NULL,
	started_at  INTEGER NOT NULL,
	channel     TEXT    NOT NULL,
	handed_off  INTEGER NOT NULL,
	PRIMARY KEY (tenant, session_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_info_by_value ON session_info (tenant, key, value_lower, started_at, session_id, channel, handed_off);
CREATE INDEX IF NOT EXISTS session_info_by_key ON session_info (tenant, key, started_at, session_id, value_lower, channel, handed_off);
-- session_info_by_key_filters: likewise a key's sessions of one channel and
-- handoff (as session_tags_by_value_filters).
CREATE INDEX IF NOT EXISTS session_info_by_key_filters ON session_info (tenant, key, channel, handed_off, started_at, session_id, value_lower);

-- message_words: full-text index of message texts, for the report's q filter.
-- Why FTS5 and not lower(text): SQLite's lower() and LIKE fold ASCII only, so
-- "NÃO" would not find "não". The unicode61 tokenizer folds case for all of
-- Unicode and, with remove_diacritics 2, accents too ("nao" finds "NÃO"), and
-- matching indexed words scales where scanning every message text does not.
-- The index is contentless (the text stays only in events.body).
--
-- Its rowid is the message's place in the report's order: the complement of
-- a key whose high bits are the started_at of the message's session (Unix
-- ms) and whose low 20 are a number unique within that millisecond
-- (fulltext.go), so that ascending rowids go from the newest session to the
-- oldest. A word's messages of an interval are then one rowid range, which
-- FTS5 reads from its start (ascending: it reads a doclist backwards only
-- after walking to its end), and a search stops reading once it has its page
-- and its bound, instead of joining every match to its event. message_sessions
-- maps each rowid to its event and session; a message whose session moves,
-- or whose session's start moves, is deleted and reinserted under a new rowid
-- in the same transaction (contentless_delete, SQLite 3.43: rows of a
-- contentless table deleted by rowid alone).
--
-- The store writes message_words last in each transaction, one statement to
-- delete and one to insert: FTS5 flushes its pending words to disk at every
-- statement savepoint once it has been written in a transaction, so a
-- row-by-row insert (or a trigger on events) would flush once per message.
CREATE VIRTUAL TABLE IF NOT EXISTS message_words USING fts5(
	text,
	content = '',
	contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);
-- message_sessions: the session of each indexed message, by its key (mn;
-- its message_words rowid is ~mn), which grows with time as rows are
-- appended; event is its events.id, indexed for the moves and for Forget.
CREATE TABLE IF NOT EXISTS message_sessions (
	mn         INTEGER PRIMARY KEY,
	event      INTEGER NOT NULL,
	tenant     TEXT    NOT NULL,
	session_id TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS message_sessions_by_event ON message_sessions (event);
-- session_words: the same words by session, for a search of one word (one
-- token; fulltext.go, oneToken), whose answer is the same whether the word
-- is looked for in a message or in all of a session's messages. Each write
-- adds one row per session with new messages: their texts, under the rowid
-- of one of those messages (^mn, so a row is in report order and
-- message_sessions names its session). A common word then has about one
-- entry per session instead of one per message (2-3), and reading a word's
-- sessions in step with a tag's (inStep) needs no FTS5 query per session.
-- A row is deleted with the message whose rowid it has (unindex); a message
-- that moves re-indexes every message of the session it leaves, if that
-- remains, and a session whose start moves is re-indexed whole (reindexed),
-- so that no row keeps the words of a message its session no longer has.
CREATE VIRTUAL TABLE IF NOT EXISTS session_words USING fts5(
	text,
	content = '',
	contentless_delete = 1,
	tokenize = 'unicode61 remove_diacritics 2'
);
-- session_buckets: every start bucket (fulltext.go) each session has had,
-- and shared_buckets: those that more than one session (of any tenant) has
-- had. Outside a shared bucket every message keyed in it is of the one
-- session that started in it, so reading a word in step with a tag's
-- sessions (inStep) tells a session's messages by their rowids alone; only
-- in shared buckets (and the two clamped ones) are they looked up in
-- message_sessions. A session that restarts elsewhere keeps the row of its
-- old bucket (which then at most looks shared), so that a write only
-- inserts what is new; a session's rows go when it is deleted (a late event
-- merged it into another) or forgotten, found by session_buckets_by_session.
CREATE TABLE IF NOT EXISTS session_buckets (
	bucket     INTEGER NOT NULL,
	tenant     TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	PRIMARY KEY (bucket, tenant, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_buckets_by_session ON session_buckets (tenant, session_id);
CREATE TABLE IF NOT EXISTS shared_buckets (bucket INTEGER PRIMARY KEY);

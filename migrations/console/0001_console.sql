-- The console (/admin): every chat turn and proactive offer with the reasons
-- behind it, and the console's login sessions. Times are Unix milliseconds.
-- On SQLite these tables live in a database of their own (`console.db` beside
-- the main file): its writes never wait for the journal's lock, nor the
-- journal's for its. On Postgres they are in the main database
-- (migrations/postgres/0005_console.sql).
-- Rows older than `[console] retention_days` are deleted by the expiry task.

-- One row per chat turn (`kind` = 'turn') or proactive offer ('offer').
-- Columns are what the console filters and counts by; the rest (ranking,
-- actions, replies, sources, the activity block and the prompt) is JSON in
-- `detail`, read only to show one turn.
CREATE TABLE IF NOT EXISTS turns (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL,
    product_id TEXT,
    user_id TEXT,
    sender TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    -- What the user wrote (an offer: the offer's text).
    text TEXT NOT NULL,
    -- The bot's replies joined, for search.
    reply TEXT NOT NULL,
    intent TEXT,
    responder TEXT NOT NULL,
    -- 1: the message fell back or was ambiguous (the NLU inbox's).
    inbox INTEGER NOT NULL,
    llm_ms INTEGER,
    detail TEXT NOT NULL,
    feedback TEXT,
    label TEXT
);
CREATE INDEX IF NOT EXISTS turns_product_at ON turns (product_id, at);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, at);
CREATE INDEX IF NOT EXISTS turns_at ON turns (at);

-- Console logins: only a digest of the cookie's token is kept. `product_id`
-- is NULL for the admin.
CREATE TABLE IF NOT EXISTS console_sessions (
    token_digest TEXT PRIMARY KEY NOT NULL,
    product_id TEXT,
    csrf TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

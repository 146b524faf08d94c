-- Postgres: the same tables as migrations/0003_state.sql (BIGINT for INTEGER).
-- What a restart must not lose (see README "What survives a restart"). Times
-- are Unix milliseconds; rows older than the lookback / idle settings are
-- deleted by the server's expiry task, so the file stays bounded.

-- Every accepted action, in the order it was stored (`seq` is global and
-- increasing across restarts), with the delivery id it came with. Rows are
-- only ever appended at the end of the table and of its one index, so a
-- commit writes few pages; they are kept for the longer of the lookback (the
-- action) and the de-duplication window (its id), then deleted by expiry.
-- `action` is the action as JSON.
CREATE TABLE IF NOT EXISTS actions (
    seq BIGINT PRIMARY KEY NOT NULL,
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    dedupe_key TEXT NOT NULL,
    action TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_received ON actions (received_at);

-- A session's rolling summary; it replaced the raw actions up to `covers_seq`
-- (those rows stay for their delivery ids, and are not restored as actions).
CREATE TABLE IF NOT EXISTS summaries (
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    covers_seq BIGINT NOT NULL,
    -- The session's next action index after it (indexes go on from there).
    next_index BIGINT NOT NULL,
    -- When the newest action it covers was received (for the lookback).
    received_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, session_id)
);

-- Emails learnt from `$identify` events (actions carry their own).
CREATE TABLE IF NOT EXISTS user_emails (
    product_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, user_id)
);

-- A conversation's memory (turns, dialogue state) as JSON, rewritten after
-- each turn. `user_id` is set only for a verified visitor, for erasure.
CREATE TABLE IF NOT EXISTS conversations (
    conversation_key TEXT PRIMARY KEY NOT NULL,
    product_id TEXT,
    user_id TEXT,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (product_id, user_id);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at);

-- Proactive state per session (phase, cooldown), as JSON.
CREATE TABLE IF NOT EXISTS proactive_states (
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, session_id)
);

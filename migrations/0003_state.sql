-- What a restart must not lose (see README "What survives a restart"). Times
-- are Unix milliseconds; rows older than the lookback / idle settings are
-- deleted by the server's expiry task, so the file stays bounded.

-- Every accepted action, in the order it was stored (`seq` is global and
-- increasing across restarts). `action` is the action as JSON.
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY NOT NULL,
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    action TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_session ON actions (product_id, session_id, seq);
CREATE INDEX IF NOT EXISTS actions_received ON actions (received_at);

-- A session's rolling summary; it replaced the raw actions up to `covers_seq`
-- (those rows are deleted in the same transaction).
CREATE TABLE IF NOT EXISTS summaries (
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    covers_seq INTEGER NOT NULL,
    -- The session's next action index after it (indexes go on from there).
    next_index INTEGER NOT NULL,
    -- When the newest action it covers was received (for the lookback).
    received_at INTEGER NOT NULL,
    PRIMARY KEY (product_id, session_id)
);

-- Delivery de-duplication ids: a PostHog retry after a restart is still a duplicate.
CREATE TABLE IF NOT EXISTS deliveries (
    product_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (product_id, dedupe_key)
);
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at);

-- Emails learnt from `$identify` events (actions carry their own).
CREATE TABLE IF NOT EXISTS user_emails (
    product_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (product_id, user_id)
);

-- A conversation's memory (turns, dialogue state) as JSON, rewritten after
-- each turn. `user_id` is set only for a verified visitor, for erasure.
CREATE TABLE IF NOT EXISTS conversations (
    conversation_key TEXT PRIMARY KEY NOT NULL,
    product_id TEXT,
    user_id TEXT,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (product_id, user_id);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated_at);

-- Proactive state per session (phase, cooldown), as JSON.
CREATE TABLE IF NOT EXISTS proactive_states (
    product_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (product_id, session_id)
);

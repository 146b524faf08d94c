-- Postgres: the same table as migrations/0001_products.sql, with BIGINT for
-- Unix milliseconds and 0/1 flags (SQLite's INTEGER is 64-bit; Postgres's is not).
-- Products: one row per app whose events we ingest. Keys that are only
-- compared (api_key, stream_key) are stored as SHA-256 digests (hex); the
-- webhook and identity secrets are kept as given, since HMACs need them.
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY NOT NULL,
    contact_email TEXT,
    webhook_secret TEXT NOT NULL,
    previous_webhook_secret TEXT,
    -- Unix milliseconds after which the previous secret is refused.
    previous_secret_expires_at BIGINT,
    stream_key_id TEXT,
    stream_key_digest TEXT,
    api_key_digest TEXT UNIQUE,
    identity_secret TEXT,
    identity_required BIGINT NOT NULL DEFAULT 0,
    posthog_api_key TEXT UNIQUE,
    -- JSON array of origins; [] = any.
    allowed_origins TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

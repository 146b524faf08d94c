-- Postgres: the same table as migrations/0004_knowledge.sql (BIGINT for INTEGER).
CREATE TABLE IF NOT EXISTS knowledge_pages (
    product_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (product_id, doc_id)
);

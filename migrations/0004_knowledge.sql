-- Help pages sent through PUT /knowledge/{product}/{doc_id} (pages in the
-- product's knowledge folder are read from the files). The search index is
-- built from these rows at start, and again when they change.
CREATE TABLE IF NOT EXISTS knowledge_pages (
    product_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    -- 'markdown' or 'html'.
    format TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (product_id, doc_id)
);

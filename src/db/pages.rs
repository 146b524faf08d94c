//! Help pages sent through the knowledge API, kept in the database so they
//! survive restarts and every instance sharing the database indexes them.

use sqlx::{AnyPool, Row};

/// One page as sent: Markdown, or HTML read as text.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPage {
    pub product: String,
    pub doc_id: String,
    pub title: String,
    pub url: String,
    pub html: bool,
    pub body: String,
}

/// The pages table.
#[derive(Clone)]
pub struct Pages {
    pool: AnyPool,
}

impl Pages {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Adds the page, or replaces the one with the same id.
    pub async fn upsert(&self, page: &StoredPage) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO knowledge_pages (product_id, doc_id, title, url, format, body, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (product_id, doc_id) DO UPDATE SET title = excluded.title, \
             url = excluded.url, format = excluded.format, body = excluded.body, \
             updated_at = excluded.updated_at",
        )
        .bind(&page.product)
        .bind(&page.doc_id)
        .bind(&page.title)
        .bind(&page.url)
        .bind(if page.html { "html" } else { "markdown" })
        .bind(&page.body)
        .bind(super::journal::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the page; false if there was none.
    pub async fn delete(&self, product: &str, doc_id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM knowledge_pages WHERE product_id = $1 AND doc_id = $2")
            .bind(product)
            .bind(doc_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every page, by product and id.
    pub async fn all(&self) -> Result<Vec<StoredPage>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT product_id, doc_id, title, url, format, body FROM knowledge_pages \
             ORDER BY product_id, doc_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredPage {
                product: row.get(0),
                doc_id: row.get(1),
                title: row.get(2),
                url: row.get(3),
                html: row.get::<String, _>(4) == "html",
                body: row.get(5),
            })
            .collect())
    }

    /// Changes whenever a page is added, replaced or deleted (count, newest
    /// change), so instances notice another's writes without reading them all.
    pub async fn version(&self) -> Result<(i64, i64), sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM knowledge_pages")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.get(0), row.get(1)))
    }
}

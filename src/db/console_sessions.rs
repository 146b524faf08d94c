//! Console logins: the digest of each cookie token (never the token), whose
//! login it is (a product, or NULL for the admin), its CSRF token and expiry.
//! In the database, so every instance sharing it knows every login.

use sqlx::{AnyPool, Row};

/// One login as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogin {
    pub product: Option<String>,
    pub csrf: String,
    pub expires_at_ms: i64,
}

#[derive(Clone)]
pub struct ConsoleSessions {
    pool: AnyPool,
}

impl ConsoleSessions {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    pub async fn create(&self, token_digest: &str, login: &StoredLogin) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO console_sessions (token_digest, product_id, csrf, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_digest)
        .bind(&login.product)
        .bind(&login.csrf)
        .bind(login.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The login, if it exists and has not expired at `now_ms`.
    pub async fn get(
        &self,
        token_digest: &str,
        now_ms: i64,
    ) -> Result<Option<StoredLogin>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT product_id, csrf, expires_at FROM console_sessions \
             WHERE token_digest = $1 AND expires_at > $2",
        )
        .bind(token_digest)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| StoredLogin {
            product: row.get(0),
            csrf: row.get(1),
            expires_at_ms: row.get(2),
        }))
    }

    pub async fn delete(&self, token_digest: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM console_sessions WHERE token_digest = $1")
            .bind(token_digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes expired logins.
    pub async fn expire(&self, now_ms: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

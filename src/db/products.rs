//! `ProductStore` on the database (SQLite or Postgres): one row per product
//! (see `migrations/0001_products.sql`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};

use crate::domain::{ForwardUrl, ProductId};
use crate::products::{KeyDigest, PreviousSecret, Product, ProductStore, StoreError};

#[derive(Clone)]
pub struct DbProducts {
    pool: AnyPool,
}

impl DbProducts {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }
}

const COLUMNS: &str = "id, contact_email, webhook_secret, previous_webhook_secret, \
     previous_secret_expires_at, stream_key_id, stream_key_digest, api_key_digest, \
     identity_secret, identity_required, posthog_api_key, allowed_origins, created_at, updated_at, \
     forward_url, forward_secret";

fn backend(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let message = db.message();
        let what = if message.contains("api_key_digest") {
            "api_key"
        } else if message.contains("posthog_api_key") {
            "posthog_api_key"
        } else {
            "id"
        };
        return StoreError::Conflict(what);
    }
    StoreError::Backend(Box::new(error))
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn from_millis(id: &str, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt {
        id: id.to_owned(),
        what: format!("timestamp {ms} out of range"),
    })
}

fn digest(id: &str, column: &str, hex: Option<String>) -> Result<Option<KeyDigest>, StoreError> {
    hex.map(|h| {
        KeyDigest::from_hex(&h).ok_or_else(|| StoreError::Corrupt {
            id: id.to_owned(),
            what: format!("{column} is not a SHA-256 digest"),
        })
    })
    .transpose()
}

fn product_from(row: &AnyRow) -> Result<Product, StoreError> {
    let get = |e: sqlx::Error| StoreError::Backend(Box::new(e));
    let raw_id: String = row.try_get("id").map_err(get)?;
    let corrupt = |what: String| StoreError::Corrupt {
        id: raw_id.clone(),
        what,
    };
    let id = ProductId::parse(&raw_id).map_err(|e| corrupt(format!("id {e}")))?;
    let previous: Option<String> = row.try_get("previous_webhook_secret").map_err(get)?;
    let expires: Option<i64> = row.try_get("previous_secret_expires_at").map_err(get)?;
    let previous_webhook_secret = match (previous, expires) {
        (Some(secret), Some(ms)) => Some(PreviousSecret {
            secret: secret.into(),
            expires_at: from_millis(&raw_id, ms)?,
        }),
        _ => None,
    };
    let origins: String = row.try_get("allowed_origins").map_err(get)?;
    let allowed_origins: Vec<String> =
        serde_json::from_str(&origins).map_err(|e| corrupt(format!("allowed_origins: {e}")))?;
    let identity_secret: Option<String> = row.try_get("identity_secret").map_err(get)?;
    let webhook_secret: String = row.try_get("webhook_secret").map_err(get)?;
    let forward_url: Option<String> = row.try_get("forward_url").map_err(get)?;
    let forward_url = forward_url
        .map(|u| ForwardUrl::parse(&u).map_err(|e| corrupt(format!("forward_url: {e}"))))
        .transpose()?;
    let forward_secret: Option<String> = row.try_get("forward_secret").map_err(get)?;
    Ok(Product {
        contact_email: row.try_get("contact_email").map_err(get)?,
        webhook_secret: webhook_secret.into(),
        previous_webhook_secret,
        stream_key_id: row.try_get("stream_key_id").map_err(get)?,
        stream_key: digest(
            &raw_id,
            "stream_key_digest",
            row.try_get("stream_key_digest").map_err(get)?,
        )?,
        api_key: digest(
            &raw_id,
            "api_key_digest",
            row.try_get("api_key_digest").map_err(get)?,
        )?,
        identity_secret: identity_secret.map(Into::into),
        // An integer on both backends (the Any driver has no SQLite booleans).
        identity_required: row.try_get::<i64, _>("identity_required").map_err(get)? != 0,
        posthog_api_key: row.try_get("posthog_api_key").map_err(get)?,
        allowed_origins,
        forward_url,
        forward_secret: forward_secret.map(Into::into),
        created_at: from_millis(&raw_id, row.try_get("created_at").map_err(get)?)?,
        updated_at: from_millis(&raw_id, row.try_get("updated_at").map_err(get)?)?,
        id,
    })
}

/// Binds a product's columns in `COLUMNS` order.
fn bind_all<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>,
    p: &'q Product,
) -> sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>> {
    let origins = serde_json::to_string(&p.allowed_origins).unwrap_or_else(|_| "[]".to_owned());
    query
        .bind(p.id.as_str())
        .bind(p.contact_email.as_deref())
        .bind(p.webhook_secret.expose_secret())
        .bind(
            p.previous_webhook_secret
                .as_ref()
                .map(|s| s.secret.expose_secret()),
        )
        .bind(
            p.previous_webhook_secret
                .as_ref()
                .map(|s| millis(s.expires_at)),
        )
        .bind(p.stream_key_id.as_deref())
        .bind(p.stream_key.map(KeyDigest::to_hex))
        .bind(p.api_key.map(KeyDigest::to_hex))
        .bind(p.identity_secret.as_ref().map(|s| s.expose_secret()))
        .bind(i64::from(p.identity_required))
        .bind(p.posthog_api_key.as_deref())
        .bind(origins)
        .bind(millis(p.created_at))
        .bind(millis(p.updated_at))
        .bind(p.forward_url.as_ref().map(|u| u.as_str().to_owned()))
        .bind(p.forward_secret.as_ref().map(|s| s.expose_secret()))
}

#[async_trait]
impl ProductStore for DbProducts {
    async fn all(&self) -> Result<Vec<Product>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM products ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(product_from).collect()
    }

    async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(product_from).transpose()
    }

    async fn insert(&self, product: &Product) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             $13, $14, $15, $16)"
        );
        bind_all(sqlx::query(&sql), product)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn update(&self, product: &Product) -> Result<bool, StoreError> {
        // Same column order as COLUMNS, the id bound first and matched last.
        let sql = "UPDATE products SET id = $1, contact_email = $2, webhook_secret = $3, \
             previous_webhook_secret = $4, previous_secret_expires_at = $5, stream_key_id = $6, \
             stream_key_digest = $7, api_key_digest = $8, identity_secret = $9, \
             identity_required = $10, posthog_api_key = $11, allowed_origins = $12, \
             created_at = $13, updated_at = $14, forward_url = $15, forward_secret = $16 \
             WHERE id = $1";
        let result = bind_all(sqlx::query(sql), product)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(result.rows_affected() > 0)
    }

    async fn delete(&self, id: &ProductId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(result.rows_affected() > 0)
    }
}

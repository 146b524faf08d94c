//! The storage port for products: a small trait a database implements
//! (`crate::db::SqliteProducts` today; Postgres can follow without touching
//! the domain).

use async_trait::async_trait;

use super::Product;
use crate::domain::ProductId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with this id, API key or PostHog key already exists.
    #[error("a product with the same {0} already exists")]
    Conflict(&'static str),
    /// A stored row could not be read back as a product.
    #[error("stored product '{id}' is unreadable: {what}")]
    Corrupt { id: String, what: String },
    /// The database failed (unreachable, locked for too long, disk full).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[async_trait]
pub trait ProductStore: Send + Sync {
    /// Every product, in id order.
    async fn all(&self) -> Result<Vec<Product>, StoreError>;
    async fn get(&self, id: &ProductId) -> Result<Option<Product>, StoreError>;
    /// Adds a product; `Conflict` when its id (or a unique key) is taken.
    async fn insert(&self, product: &Product) -> Result<(), StoreError>;
    /// Replaces a product's row; `Ok(false)` when it does not exist.
    async fn update(&self, product: &Product) -> Result<bool, StoreError>;
    /// `Ok(false)` when there was no such product.
    async fn delete(&self, id: &ProductId) -> Result<bool, StoreError>;
}

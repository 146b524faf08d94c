//! The team console's domain: what it reads from the recorded turns (rows and
//! filters), the numbers it charts (`stats`), the NLU inbox's grouping
//! (`inbox`) and the live view of sessions (`live`). No HTTP here (that is
//! `web::console`), no SQL (that is `db::turns`).

pub mod inbox;
pub mod live;
pub mod stats;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dialogue::Responder;
use crate::dialogue::record::TurnDetail;
use crate::domain::ProductId;

/// Whose data a console login may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The admin: every product (and conversations with no product).
    All,
    Product(ProductId),
}

impl Scope {
    pub fn product(&self) -> Option<&ProductId> {
        match self {
            Scope::All => None,
            Scope::Product(p) => Some(p),
        }
    }
}

/// A search over recorded turns; every part optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user: Option<String>,
    /// Contained in the message or a reply, any case.
    pub text: Option<String>,
    pub intent: Option<String>,
    pub responder: Option<Responder>,
    /// Unix milliseconds, inclusive.
    pub from_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to_ms: Option<i64>,
    pub limit: usize,
}

/// One recorded turn (or offer) as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TurnRow {
    pub id: String,
    pub conversation_id: String,
    pub product: Option<String>,
    pub user: Option<String>,
    pub sender: String,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub text: String,
    pub intent: Option<String>,
    pub responder: String,
    pub llm_ms: Option<i64>,
    pub feedback: Option<String>,
    pub label: Option<String>,
    #[serde(flatten)]
    pub detail: TurnDetail,
}

/// What the numbers are counted from: one row per turn or offer.
#[derive(Debug, Clone)]
pub struct StatRow {
    pub conversation_id: String,
    pub at_ms: i64,
    pub offer: bool,
    pub intent: Option<String>,
    pub responder: Responder,
    pub fallback: bool,
    pub llm_ms: Option<i64>,
    pub feedback: Option<String>,
}

/// What the console's handlers share: the recorded turns, the logins, and
/// what retrains the classifier from the inbox's labels.
pub struct Console {
    pub turns: crate::db::TurnLog,
    pub logins: crate::db::ConsoleSessions,
    pub trainer: crate::nlu::trainer::Trainer,
    /// One label (file write and retraining) at a time.
    pub labelling: tokio::sync::Mutex<()>,
    /// Login attempts per target (the admin, each product, unknown products),
    /// so a key cannot be guessed at speed. Keys are bounded by the products.
    pub logins_allowed: governor::DefaultKeyedRateLimiter<String>,
}

/// Console login attempts allowed per minute per target.
pub const LOGINS_PER_MINUTE: u32 = 10;

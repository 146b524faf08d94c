//! Chat rate limits counted across instances: one counter per (who, window)
//! in Redis (`INCR`, expiring with its window), so a user who spreads
//! messages over several instances still gets one allowance. Fixed windows:
//! at a window's edge a client may send up to twice the limit in a short
//! burst, which the per-socket limiter in each instance still bounds.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Error, Keys};

#[derive(Clone)]
pub struct Counters {
    connection: ConnectionManager,
    keys: Keys,
    metrics: crate::metrics::Metrics,
}

impl Counters {
    pub fn new(
        connection: ConnectionManager,
        keys: Keys,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        Self {
            connection,
            keys,
            metrics,
        }
    }

    /// Counts one more for `who` in the current `window`; true while within
    /// `limit`. One round trip.
    pub async fn allow(
        &self,
        kind: &str,
        who: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, Error> {
        let span = super::log::millis(window);
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let key = self.keys.counter(kind, who, now / span);
        self.metrics.redis("limit");
        let (count,): (u64,) = redis::pipe()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(span)
            .ignore()
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(count <= u64::from(limit))
    }
}

#[async_trait::async_trait]
impl crate::limits::SharedCounts for Counters {
    async fn allow(
        &self,
        kind: &str,
        who: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, String> {
        Counters::allow(self, kind, who, limit, window)
            .await
            .map_err(|e| e.to_string())
    }
}

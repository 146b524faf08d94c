//! Which users have a socket open somewhere: a key per user with an expiry,
//! renewed by every instance for the users it holds sockets of. An offer for
//! a user who has none then costs one `EXISTS` instead of a question to
//! every instance (`fetch_sockets` waits for all of them to answer).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::Keys;
use crate::channels::presence::LocalPresence;
use crate::domain::{ProductId, UserId};

/// How long a user's key lasts; renewed every third of it.
const TTL: Duration = Duration::from_secs(30);
/// How long "offline" is believed without asking again.
const OFFLINE_FOR: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    keys: Keys,
    /// Sockets per user on this instance.
    local: LocalPresence,
    /// Users Redis said were offline, for a second: a burst of events that
    /// each match a trigger asks once, not per event.
    offline: moka::sync::Cache<(ProductId, UserId), ()>,
    metrics: crate::metrics::Metrics,
}

impl Presence {
    pub fn new(
        connection: ConnectionManager,
        keys: Keys,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection,
                keys,
                local: LocalPresence::default(),
                offline: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(OFFLINE_FOR)
                    .build(),
                metrics,
            }),
        }
    }

    fn key(&self, product: &ProductId, user: &UserId) -> String {
        self.inner.keys.online(product.as_str(), user.as_str())
    }

    /// Renews the keys of this instance's users until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(TTL / 3);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let keys: Vec<String> = self
                .inner
                .local
                .users()
                .iter()
                .map(|(p, u)| self.key(p, u))
                .collect();
            for chunk in keys.chunks(1000) {
                let mut pipe = redis::pipe();
                for key in chunk {
                    pipe.cmd("SET")
                        .arg(key)
                        .arg(1)
                        .arg("PX")
                        .arg(TTL.as_millis() as u64)
                        .ignore();
                }
                if let Err(error) = pipe.exec_async(&mut self.inner.connection.clone()).await {
                    tracing::warn!(%error, "could not renew who is online");
                    break;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::channels::Presence for Presence {
    fn joined(&self, product: &ProductId, user: &UserId) {
        let first = self.inner.local.join(product, user);
        self.inner
            .offline
            .invalidate(&(product.clone(), user.clone()));
        if first {
            self.inner.metrics.redis("presence");
            let (key, mut connection) = (self.key(product, user), self.inner.connection.clone());
            tokio::spawn(async move {
                let set = redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("PX")
                    .arg(TTL.as_millis() as u64)
                    .exec_async(&mut connection)
                    .await;
                if let Err(error) = set {
                    tracing::debug!(%error, "could not say a user is online");
                }
            });
        }
    }

    fn left(&self, product: &ProductId, user: &UserId) {
        // The key is left to expire: another instance may hold a socket too.
        self.inner.local.leave(product, user);
    }

    async fn online(&self, product: &ProductId, user: &UserId) -> bool {
        if self.inner.local.holds(product, user) {
            return true;
        }
        let key = (product.clone(), user.clone());
        if self.inner.offline.contains_key(&key) {
            return false;
        }
        self.inner.metrics.redis("presence");
        let exists = redis::cmd("EXISTS")
            .arg(self.key(product, user))
            .query_async::<u64>(&mut self.inner.connection.clone())
            .await;
        // Unknown (Redis down): let the adapter look.
        let online = exists.map_or(true, |n| n > 0);
        if !online {
            self.inner.offline.insert(key, ());
        }
        online
    }
}

//! The pub/sub under socketioxide's Redis adapter (`socketioxide-redis`), so a
//! proactive offer made on one instance reaches a socket held by another.
//!
//! Ours rather than the crate's `RedisDriver`: that one holds a plain
//! multiplexed connection that never reconnects, so after a Redis restart
//! instances would stop hearing each other for good. This one rides on
//! redis-rs's `ConnectionManager`, which reconnects and resubscribes by
//! itself. With one instance (`Bus::Local`) nothing is published and the
//! adapter only ever talks to this process.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

use crate::config::StoreSettings;

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// The adapter type every socket handler uses, whatever the backend.
pub type Adapter = socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, Bus>;

#[derive(Clone)]
pub enum Bus {
    /// One instance: no pub/sub.
    Local,
    Redis(Arc<Shared>),
}

pub struct Shared {
    connection: ConnectionManager,
    handlers: Handlers,
    metrics: crate::metrics::Metrics,
}

impl Bus {
    /// Subscriptions survive reconnects (`set_automatic_resubscription`).
    pub async fn connect(
        client: &redis::Client,
        settings: &StoreSettings,
        metrics: crate::metrics::Metrics,
    ) -> Result<Self, super::Error> {
        let handlers: Handlers = Arc::default();
        let deliver = handlers.clone();
        let config = ConnectionManagerConfig::new()
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                route(&deliver, push);
                Ok::<(), std::convert::Infallible>(())
            });
        let connection = super::manager(client, settings, config).await?;
        Ok(Bus::Redis(Arc::new(Shared {
            connection,
            handlers,
            metrics,
        })))
    }
}

impl Bus {
    /// Pings Redis twice a second: the connection manager reconnects (and
    /// resubscribes) only when a command finds it broken, and the adapter
    /// may send nothing for a long time. Without this, the first offer after
    /// a Redis restart would fail and the subscriptions stay gone meanwhile.
    pub async fn keep_alive(self, shutdown: tokio_util::sync::CancellationToken) {
        let Bus::Redis(shared) = self else {
            return;
        };
        let (connection, metrics) = (&shared.connection, &shared.metrics);
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(500));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {
                    metrics.redis("ping");
                    let _ = redis::cmd("PING").exec_async(&mut connection.clone()).await;
                }
            }
        }
    }
}

/// Hands a published message to the adapter's handler for its channel. A
/// handler that is behind loses the message (the adapter's own drivers do the
/// same): waiting here would stall every channel.
fn route(handlers: &Handlers, push: PushInfo) {
    if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
        return;
    }
    let mut data = push.data.into_iter();
    let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(channel), Ok(payload)) = (
        String::from_redis_value(channel),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        return;
    };
    if let Some(tx) = handlers.read().get(&channel)
        && tx.try_send((channel.clone(), payload)).is_err()
    {
        tracing::warn!(channel, "socket.io adapter message dropped (handler full)");
    }
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BusError(#[from] redis::RedisError);

impl Driver for Bus {
    type Error = BusError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        match self {
            Bus::Local => Ok(()),
            Bus::Redis(shared) => {
                let (connection, metrics) = (&shared.connection, &shared.metrics);
                metrics.redis("socket.io");
                redis::cmd("PUBLISH")
                    .arg(chan)
                    .arg(val)
                    .exec_async(&mut connection.clone())
                    .await?;
                Ok(())
            }
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        match self {
            Bus::Local => Ok(MessageStream::new_empty()),
            Bus::Redis(shared) => {
                let (connection, handlers, metrics) =
                    (&shared.connection, &shared.handlers, &shared.metrics);
                metrics.redis("socket.io");
                let (tx, rx) = mpsc::channel(size.max(1));
                handlers.write().insert(chan.clone(), tx);
                connection.clone().subscribe(&chan).await?;
                Ok(MessageStream::new(rx))
            }
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        match self {
            Bus::Local => Ok(()),
            Bus::Redis(shared) => {
                let (connection, handlers, metrics) =
                    (&shared.connection, &shared.handlers, &shared.metrics);
                metrics.redis("socket.io");
                handlers.write().remove(&chan);
                connection.clone().unsubscribe(&chan).await?;
                Ok(())
            }
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        match self {
            Bus::Local => Ok(1),
            Bus::Redis(shared) => {
                let (connection, metrics) = (&shared.connection, &shared.metrics);
                metrics.redis("socket.io");
                let (_, count): (String, u16) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(chan)
                    .query_async(&mut connection.clone())
                    .await?;
                Ok(count)
            }
        }
    }
}

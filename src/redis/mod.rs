//! Redis, for running several instances: the shared log of session state
//! (`log`), the instances' copies kept current from it (`replica`), chat rate
//! limits counted across instances (`counters`) and the Socket.IO adapter's
//! pub/sub (`bus`). Standalone Redis ≥ 6.2 (cluster is not supported: the
//! scripts touch keys they derive).

pub mod bus;
pub mod counters;
pub mod log;
pub mod presence;
pub mod replica;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::config::StoreSettings;

pub use log::Log;

/// Why Redis could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `store.redis_url` does not parse.
    #[error("store.redis_url is not a Redis URL: {0}")]
    Url(String),
    /// Redis refused, failed or did not answer in time.
    #[error("Redis failed: {0}")]
    Redis(std::sync::Arc<redis::RedisError>),
    /// A reply we could not read (a Redis we do not understand).
    #[error("unexpected reply from Redis: {0}")]
    Reply(String),
    /// The log is shutting down.
    #[error("the Redis log is closed")]
    Closed,
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        Error::Redis(std::sync::Arc::new(error))
    }
}

/// A client for `settings.redis_url`, speaking RESP3 (pub/sub pushes need it).
pub fn client(settings: &StoreSettings) -> Result<redis::Client, Error> {
    let raw = settings.redis_url.expose_secret().trim();
    let mut url = url::Url::parse(raw).map_err(|e| Error::Url(e.to_string()))?;
    if !url.query_pairs().any(|(k, _)| k == "protocol") {
        url.query_pairs_mut().append_pair("protocol", "resp3");
    }
    redis::Client::open(url.as_str()).map_err(|e| Error::Url(e.to_string()))
}

/// A connection that reconnects by itself (with backoff) after Redis goes
/// away; commands fail fast meanwhile, so ingest can answer 503.
pub async fn manager(
    client: &redis::Client,
    settings: &StoreSettings,
    config: ConnectionManagerConfig,
) -> Result<ConnectionManager, Error> {
    let config = config
        .set_response_timeout(Some(settings.redis_timeout_ms))
        .set_connection_timeout(Some(settings.redis_timeout_ms))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    Ok(ConnectionManager::new_with_config(client.clone(), config).await?)
}

/// Key names, all under the deployment's prefix. Ids cannot hold control
/// characters, so `\x1f` keeps every part apart.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

const SEP: char = '\u{1f}';

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The log every instance reads (a Redis Stream).
    pub fn log(&self) -> String {
        format!("{}:log", self.prefix)
    }

    /// The counter sequence numbers come from.
    pub fn seq(&self) -> String {
        format!("{}:seq", self.prefix)
    }

    pub fn delivery(&self, product: &str, key: &str) -> String {
        format!("{}:dlv:{product}{SEP}{key}", self.prefix)
    }

    /// Which instance makes a session's offers and summaries.
    pub fn owner(&self, product: &str, session: &str) -> String {
        format!("{}:own:{product}{SEP}{session}", self.prefix)
    }

    /// Prefix of the keys that say an instance is alive (`+ instance id`).
    pub fn alive_prefix(&self) -> String {
        format!("{}:alive:", self.prefix)
    }

    /// The log entries that hold one user's data (erasure deletes them).
    pub fn user_entries(&self, product: &str, user: &str) -> String {
        format!("{}:ue:{product}{SEP}{user}", self.prefix)
    }

    /// The log entries that hold one session's data.
    pub fn session_entries(&self, product: &str, session: &str) -> String {
        format!("{}:se:{product}{SEP}{session}", self.prefix)
    }

    /// Set while some instance holds a socket of the user.
    pub fn online(&self, product: &str, user: &str) -> String {
        format!("{}:on:{product}{SEP}{user}", self.prefix)
    }

    pub fn counter(&self, kind: &str, who: &str, window: u64) -> String {
        format!("{}:rl:{kind}:{who}{SEP}{window}", self.prefix)
    }
}

//! Each instance's copy of the shared state, kept current from the log: at
//! start every entry still in it is applied in order (`restore`), then new
//! entries as they are appended (`run`, on a connection of its own, since
//! `XREAD BLOCK` would stall anything queued behind it). Entries this
//! instance wrote were applied when they were written and are skipped.
//! Reads (a chat turn's context, `/context`) stay local and take microseconds.

use std::time::Duration;

use redis::Value;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Error, Log};
use crate::context::{ContextStore, Restored};
use crate::dialogue::Conversations;
use crate::domain::{Action, ProductId, SessionId, UserId};
use crate::proactive::Proactive;
use crate::stream::{Hub, actions_payloads};

/// Entries read per round trip.
const BATCH: usize = 1000;
/// How long one `XREAD` waits for new entries before asking again.
const BLOCK_MS: u64 = 5000;

/// What a replica applies entries to.
#[derive(Clone)]
pub struct Replica {
    pub log: Log,
    pub store: ContextStore,
    pub conversations: Conversations,
    pub proactive: Proactive,
    pub stream: Hub,
    pub tasks: TaskTracker,
}

/// Counts of what a restore applied.
#[derive(Debug, Default)]
pub struct Applied {
    pub entries: usize,
    pub actions: usize,
    pub skipped: usize,
}

impl Replica {
    /// Applies every entry in the log; returns the last id read (where
    /// `run` goes on from).
    pub async fn restore(&self) -> Result<(String, Applied), Error> {
        let mut connection = self.log.connection();
        let key = self.log.keys().log();
        let mut applied = Applied::default();
        let mut from = "-".to_owned();
        let mut last = "0-0".to_owned();
        loop {
            self.log.count("restore");
            let reply: StreamRangeReply = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut connection)
                .await?;
            let n = reply.ids.len();
            for entry in &reply.ids {
                applied.entries += 1;
                match self.apply(entry, false) {
                    Some(actions) => applied.actions += actions,
                    None => applied.skipped += 1,
                }
            }
            if let Some(entry) = reply.ids.last() {
                last = entry.id.clone();
                from = format!("({last}");
            }
            if n < BATCH {
                return Ok((last, applied));
            }
        }
    }

    /// Applies entries as they are appended, from after `last`, until
    /// `shutdown`. Reconnects (with backoff) when Redis goes away and goes on
    /// from the last entry applied, so nothing still in the log is missed.
    pub async fn run(self, client: redis::Client, mut last: String, shutdown: CancellationToken) {
        let key = self.log.keys().log();
        let mut delay = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let connection = tokio::select! {
                () = shutdown.cancelled() => return,
                c = client.get_multiplexed_async_connection() => c,
            };
            let mut connection = match connection {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(%error, "Redis log: cannot connect; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            // A blocked read waits longer than any default response timeout.
            connection.set_response_timeout(Duration::from_millis(BLOCK_MS + 2000));
            loop {
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("COUNT")
                    .arg(BATCH)
                    .arg("BLOCK")
                    .arg(BLOCK_MS)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(&last);
                self.log.count("read");
                let read = cmd.query_async::<Option<StreamReadReply>>(&mut connection);
                let reply = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = read => r,
                };
                match reply {
                    Ok(reply) => {
                        delay = Duration::from_millis(100);
                        for stream in reply.map(|r| r.keys).unwrap_or_default() {
                            for entry in &stream.ids {
                                self.apply(entry, true);
                                last = entry.id.clone();
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Redis log: read failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// Applies one entry; `live` when it was just appended (then this
    /// instance's own entries are skipped, and owned sessions' new actions
    /// go to the proactive triggers). Returns the actions applied, or `None`
    /// for an entry that did not parse.
    fn apply(&self, entry: &StreamId, live: bool) -> Option<usize> {
        let field = |name: &str| -> Option<String> {
            match entry.map.get(name)? {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            }
        };
        let origin = field("o")?;
        let kind = field("k")?;
        if live && origin == self.log.me() {
            return Some(0);
        }
        let age = age_of(&entry.id);
        let product = || field("p").and_then(|p| ProductId::parse(&p).ok());
        let session = || field("s").and_then(|s| SessionId::parse(&s).ok());
        let user = || field("u").and_then(|u| UserId::parse(&u).ok());
        match kind.as_str() {
            "a" => {
                let product = product()?;
                let rows: Vec<(u64, String, Action)> = serde_json::from_str(&field("d")?).ok()?;
                let n = rows.len();
                let mut owned: Vec<SessionId> = Vec::new();
                for (_, owner, action) in &rows {
                    self.log.note_owner(&product, &action.session_id, owner);
                    if live && owner == self.log.me() && !owned.contains(&action.session_id) {
                        owned.push(action.session_id.clone());
                    }
                }
                if live && self.stream.wanted(&product) {
                    let payloads = actions_payloads(
                        &product,
                        rows.iter().map(|(_, _, a)| a),
                        chrono::Utc::now(),
                    );
                    self.stream.publish(&product, payloads);
                }
                self.store.restore(
                    &product,
                    rows.into_iter()
                        .map(|(seq, _, action)| Restored { seq, action, age })
                        .collect(),
                );
                if !owned.is_empty() {
                    // Another instance took the events; this one makes the
                    // session's offers.
                    let proactive = self.proactive.clone();
                    self.tasks
                        .spawn(async move { proactive.on_actions(&product, &owned).await });
                }
                Some(n)
            }
            "s" => {
                #[derive(serde::Deserialize)]
                struct Summary {
                    text: String,
                    covers_seq: u64,
                    next_index: u64,
                    age_ms: u64,
                }
                let s: Summary = serde_json::from_str(&field("d")?).ok()?;
                self.store.apply_summary(
                    &product()?,
                    &session()?,
                    s.text,
                    s.covers_seq,
                    s.next_index,
                    age + Duration::from_millis(s.age_ms),
                );
                Some(0)
            }
            "c" => self
                .conversations
                .restore(&field("c")?, &field("d")?)
                .then_some(0),
            "p" => self
                .proactive
                .restore(product()?, session()?, &field("d")?, age)
                .then_some(0),
            "e" => {
                self.store.note_email(&product()?, &user()?, &field("d")?);
                Some(0)
            }
            "x" => {
                let (product, user) = (product()?, user()?);
                let erased = self.store.erase_user(&product, &user);
                self.conversations.erase_user(&product, &user);
                self.proactive.forget(&product, &erased.sessions);
                Some(0)
            }
            _ => None,
        }
    }
}

/// How long ago an entry was appended (its id is the append time in ms).
fn age_of(id: &str) -> Duration {
    let ms: i64 = id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    let now = chrono::Utc::now().timestamp_millis();
    Duration::from_millis(u64::try_from(now - ms).unwrap_or(0))
}

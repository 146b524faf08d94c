//! The shared log: every change to session state, in one Redis Stream that
//! every instance reads (`replica`). Ingest is one script call per request
//! (one round trip, however many events): it drops deliveries any instance
//! already took (`SET NX` with the de-dupe TTL), numbers the new actions,
//! names each session's owner and appends one entry. Summaries,
//! conversations and proactive state are appended by a background writer
//! that sends whatever has queued as one pipeline. Entries older than the
//! longest retention setting are trimmed on every append (`MINID`), and
//! erasure deletes a user's entries (`XDEL`), so Redis stays bounded and
//! forgets on request.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Error, Keys};
use crate::domain::{Action, ProductId, SessionId, UserId};

/// Drops deliveries already taken, numbers the rest, names owners, appends.
/// KEYS: log, seq. ARGV: me, product, de-dupe TTL ms, owner TTL ms, alive-key
/// prefix, MINID, retention ms, n, then five per action: delivery key, owner
/// key, user-entries key, session-entries key, action JSON.
/// Returns {entry id or "", first seq, flags (1 = new), owner per new action}.
const INGEST: &str = r#"
local me, product = ARGV[1], ARGV[2]
local dttl, ottl, alive = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local minid, keep, n = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local flags, rows, owners, sets = {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 9 + i * 5
  if redis.call('SET', ARGV[b], '1', 'NX', 'PX', dttl) then
    flags[i + 1] = 1
    local okey = ARGV[b + 1]
    local owner = owners[okey]
    if not owner then
      owner = redis.call('GET', okey)
      if (not owner) or redis.call('EXISTS', alive .. owner) == 0 then
        owner = me
        redis.call('SET', okey, me, 'PX', ottl)
      else
        redis.call('PEXPIRE', okey, ottl)
      end
      owners[okey] = owner
    end
    rows[#rows + 1] = {owner, ARGV[b + 4]}
    sets[ARGV[b + 2]] = true
    sets[ARGV[b + 3]] = true
  else
    flags[i + 1] = 0
  end
end
if #rows == 0 then return {'', 0, flags, {}} end
local first = redis.call('INCRBY', KEYS[2], #rows) - #rows + 1
local parts, list = {}, {}
for j, row in ipairs(rows) do
  parts[j] = '[' .. (first + j - 1) .. ',"' .. row[1] .. '",' .. row[2] .. ']'
  list[j] = row[1]
end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*',
  'o', me, 'k', 'a', 'p', product, 'd', '[' .. table.concat(parts, ',') .. ']')
for key in pairs(sets) do
  redis.call('SADD', key, id)
  redis.call('PEXPIRE', key, keep)
end
return {id, first, flags, list}
"#;

/// Appends one entry and files it under the sets that name its owner.
/// KEYS: log. ARGV: MINID, retention ms, number of sets, the sets, then
/// field, value pairs. Returns the entry id.
const APPEND: &str = r#"
local minid, keep, nsets = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local fields = {}
for i = 4 + nsets, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', unpack(fields))
for i = 4, 3 + nsets do
  redis.call('SADD', ARGV[i], id)
  redis.call('PEXPIRE', ARGV[i], keep)
end
return id
"#;

/// Deletes the entries filed under the given sets, and the sets.
/// KEYS: log. ARGV: the sets. Returns how many entries went.
const ERASE: &str = r#"
local deleted = 0
for i = 1, #ARGV do
  local ids = redis.call('SMEMBERS', ARGV[i])
  for j = 1, #ids, 500 do
    deleted = deleted + redis.call('XDEL', KEYS[1], unpack(ids, j, math.min(j + 499, #ids)))
  end
  redis.call('DEL', ARGV[i])
end
return deleted
"#;

/// What the log is asked to keep after the fact (not awaited by a request).
enum Background {
    Append {
        sets: Vec<String>,
        fields: Vec<(&'static str, String)>,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    },
}

/// How long each kind of state is kept (the same settings as the journal's).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// The longest of all: entries older than this are trimmed.
    pub log: Duration,
    pub deliveries: Duration,
    /// How long an instance's "alive" key lasts (it renews it every third).
    pub alive: Duration,
    /// How long a session stays with its owner without new events.
    pub session: Duration,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    keys: Keys,
    me: String,
    ingest: Script,
    erase: Script,
    retention: Retention,
    background: mpsc::Sender<Background>,
    /// The owner each session's latest entry named.
    owners: Cache<(ProductId, SessionId), Arc<str>>,
    closed: CancellationToken,
    metrics: crate::metrics::Metrics,
}

/// New actions, as the log numbered them.
#[derive(Debug, Default)]
pub struct Kept {
    pub actions: Vec<(u64, Action)>,
    /// Deliveries another instance (or an earlier request) had already taken.
    pub duplicates: usize,
    /// Sessions among them that this instance owns.
    pub owned: Vec<SessionId>,
}

/// Runs the background writer; see [`Log::start`].
pub struct LogTask {
    appender: Appender,
    rx: mpsc::Receiver<Background>,
    closed: CancellationToken,
}

/// Writes one batch of background appends as one pipeline.
struct Appender {
    connection: ConnectionManager,
    keys: Keys,
    append: Script,
    retention: Retention,
    metrics: crate::metrics::Metrics,
}

impl Log {
    /// `me` names this instance in the log (unique per process start).
    pub fn start(
        connection: ConnectionManager,
        keys: Keys,
        retention: Retention,
        queue: usize,
        metrics: crate::metrics::Metrics,
    ) -> (Self, LogTask) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let closed = CancellationToken::new();
        let log = Self {
            inner: Arc::new(Inner {
                connection: connection.clone(),
                keys: keys.clone(),
                me: uuid::Uuid::new_v4().simple().to_string(),
                ingest: Script::new(INGEST),
                erase: Script::new(ERASE),
                retention,
                background: tx,
                owners: Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_idle(retention.session.max(Duration::from_secs(60)))
                    .build(),
                closed: closed.clone(),
                metrics: metrics.clone(),
            }),
        };
        let task = LogTask {
            appender: Appender {
                connection,
                keys,
                append: Script::new(APPEND),
                retention,
                metrics,
            },
            rx,
            closed,
        };
        (log, task)
    }

    /// This instance's id in the log.
    pub fn me(&self) -> &str {
        &self.inner.me
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }

    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Counts a round trip to Redis (`copilot_redis_round_trips_total`).
    pub fn count(&self, op: &'static str) {
        self.inner.metrics.redis(op);
    }

    /// True when this instance makes `session`'s offers and summaries.
    pub fn owns(&self, product: &ProductId, session: &SessionId) -> bool {
        self.inner
            .owners
            .get(&(product.clone(), session.clone()))
            .is_some_and(|owner| &*owner == self.inner.me.as_str())
    }

    /// Notes the owner an entry named (the replica calls this).
    pub fn note_owner(&self, product: &ProductId, session: &SessionId, owner: &str) {
        let key = (product.clone(), session.clone());
        if self.inner.owners.get(&key).as_deref() != Some(owner) {
            self.inner.owners.insert(key, Arc::from(owner));
        }
    }

    /// Says this instance is alive, for `alive` long; run every third of it.
    pub async fn heartbeat(&self) -> Result<(), Error> {
        let key = format!("{}{}", self.inner.keys.alive_prefix(), self.inner.me);
        self.count("heartbeat");
        redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("PX")
            .arg(millis(self.inner.retention.alive))
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Keeps the actions no instance took before (`keys[i]` is `actions[i]`'s
    /// delivery id); one round trip.
    pub async fn keep_actions(
        &self,
        product: &ProductId,
        actions: Vec<Action>,
        keys: &[&str],
    ) -> Result<Kept, Error> {
        if actions.is_empty() {
            return Ok(Kept::default());
        }
        if self.inner.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let k = &self.inner.keys;
        let r = &self.inner.retention;
        let mut call = self.inner.ingest.prepare_invoke();
        call.key(k.log())
            .key(k.seq())
            .arg(&self.inner.me)
            .arg(product.as_str())
            .arg(millis(r.deliveries))
            .arg(millis(r.session))
            .arg(k.alive_prefix())
            .arg(min_id(r.log))
            .arg(millis(r.log))
            .arg(actions.len());
        for (action, key) in actions.iter().zip(keys) {
            call.arg(k.delivery(product.as_str(), key))
                .arg(k.owner(product.as_str(), action.session_id.as_str()))
                .arg(k.user_entries(product.as_str(), action.user_id.as_str()))
                .arg(k.session_entries(product.as_str(), action.session_id.as_str()))
                .arg(serde_json::to_string(action).unwrap_or_else(|_| "null".to_owned()));
        }
        self.count("ingest");
        let (_, first, flags, owners): (String, u64, Vec<u8>, Vec<String>) =
            call.invoke_async(&mut self.connection()).await?;
        if flags.len() != actions.len() {
            return Err(Error::Reply(format!(
                "{} flags for {} actions",
                flags.len(),
                actions.len()
            )));
        }
        let mut kept = Kept::default();
        let mut owners = owners.into_iter();
        for (action, flag) in actions.into_iter().zip(flags) {
            if flag == 0 {
                kept.duplicates += 1;
                continue;
            }
            let owner = owners.next().unwrap_or_default();
            self.note_owner(product, &action.session_id, &owner);
            if owner == self.inner.me && !kept.owned.contains(&action.session_id) {
                kept.owned.push(action.session_id.clone());
            }
            kept.actions
                .push((first + kept.actions.len() as u64, action));
        }
        Ok(kept)
    }

    /// An email learnt from an `$identify`; returns once appended.
    pub async fn keep_email(
        &self,
        product: &ProductId,
        user: &UserId,
        email: &str,
    ) -> Result<(), Error> {
        let (done, wait) = oneshot::channel();
        self.queue(Background::Append {
            sets: vec![
                self.inner
                    .keys
                    .user_entries(product.as_str(), user.as_str()),
            ],
            fields: vec![
                ("o", self.inner.me.clone()),
                ("k", "e".to_owned()),
                ("p", product.to_string()),
                ("u", user.to_string()),
                ("d", email.to_owned()),
            ],
            done: Some(done),
        })
        .await?;
        wait.await.map_err(|_| Error::Closed)?
    }

    /// Deletes every entry that holds the user's data (their actions and
    /// emails, their sessions' summaries and proactive states, their
    /// conversations), then tells the other instances to forget them too.
    pub async fn erase_user(
        &self,
        product: &ProductId,
        user: &UserId,
        sessions: &[SessionId],
    ) -> Result<(), Error> {
        let k = &self.inner.keys;
        let mut call = self.inner.erase.prepare_invoke();
        call.key(k.log())
            .arg(k.user_entries(product.as_str(), user.as_str()));
        for session in sessions {
            call.arg(k.session_entries(product.as_str(), session.as_str()));
        }
        self.count("erase");
        let _: u64 = call.invoke_async(&mut self.connection()).await?;
        let (done, wait) = oneshot::channel();
        self.queue(Background::Append {
            sets: Vec::new(),
            fields: vec![
                ("o", self.inner.me.clone()),
                ("k", "x".to_owned()),
                ("p", product.to_string()),
                ("u", user.to_string()),
            ],
            done: Some(done),
        })
        .await?;
        wait.await.map_err(|_| Error::Closed)?
    }

    async fn queue(&self, job: Background) -> Result<(), Error> {
        if self.inner.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        self.inner
            .background
            .send(job)
            .await
            .map_err(|_| Error::Closed)
    }

    /// Queued without waiting; dropped (and logged) if the queue is full.
    fn send(&self, sets: Vec<String>, fields: Vec<(&'static str, String)>) {
        if self.inner.closed.is_cancelled() {
            return;
        }
        let job = Background::Append {
            sets,
            fields,
            done: None,
        };
        if self.inner.background.try_send(job).is_err() {
            tracing::warn!("Redis log queue full or closed; a background write was dropped");
        }
    }
}

impl crate::dialogue::ConversationSink for Log {
    fn keep(&self, visitor: &crate::domain::Visitor, key: String, state: String) {
        let sets = match visitor.identity() {
            Some((product, user)) => vec![
                self.inner
                    .keys
                    .user_entries(product.as_str(), user.as_str()),
            ],
            None => Vec::new(),
        };
        self.send(
            sets,
            vec![
                ("o", self.inner.me.clone()),
                ("k", "c".to_owned()),
                ("c", key),
                ("d", state),
            ],
        );
    }
}

impl crate::proactive::ProactiveSink for Log {
    fn keep(&self, product: &ProductId, session: &SessionId, state: String) {
        self.send(
            vec![
                self.inner
                    .keys
                    .session_entries(product.as_str(), session.as_str()),
            ],
            vec![
                ("o", self.inner.me.clone()),
                ("k", "p".to_owned()),
                ("p", product.to_string()),
                ("s", session.to_string()),
                ("d", state),
            ],
        );
    }
}

impl crate::context::SummaryObserver for Log {
    fn summary_stored(&self, summary: &crate::context::StoredSummary<'_>) {
        let data = serde_json::json!({
            "text": summary.text,
            "covers_seq": summary.covers_seq,
            "next_index": summary.next_index,
            "age_ms": millis(summary.newest_age),
        });
        self.send(
            vec![
                self.inner
                    .keys
                    .session_entries(summary.product.as_str(), summary.session.as_str()),
            ],
            vec![
                ("o", self.inner.me.clone()),
                ("k", "s".to_owned()),
                ("p", summary.product.to_string()),
                ("s", summary.session.to_string()),
                ("d", data.to_string()),
            ],
        );
    }
}

impl LogTask {
    /// Sends what has queued as one pipeline, until the log is closed; then
    /// what is still queued.
    pub async fn run(self) {
        crate::group_commit::run(self.rx, self.closed, 1024, self.appender).await;
    }
}

impl crate::group_commit::Batches<Background> for Appender {
    async fn write(&mut self, batch: &mut Vec<Background>) {
        // The script is loaded in the same pipeline (a Redis that restarted
        // has lost it), so a batch is one round trip.
        let mut pipe = redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(APPEND).ignore();
        let (minid, keep) = (min_id(self.retention.log), millis(self.retention.log));
        for Background::Append { sets, fields, .. } in batch.iter() {
            let call = pipe
                .cmd("EVALSHA")
                .arg(self.append.get_hash())
                .arg(1)
                .arg(self.keys.log())
                .arg(&minid)
                .arg(keep)
                .arg(sets.len());
            for set in sets {
                call.arg(set);
            }
            for (field, value) in fields {
                call.arg(*field).arg(value);
            }
            call.ignore();
        }
        self.metrics.redis("append");
        let result: Result<Value, Error> = pipe
            .query_async(&mut self.connection)
            .await
            .map_err(Error::from);
        if let Err(error) = &result {
            tracing::warn!(%error, writes = batch.len(), "Redis log append failed");
        }
        for Background::Append { done, .. } in batch.drain(..) {
            if let Some(done) = done {
                let _ = done.send(result.as_ref().map(drop).map_err(Clone::clone));
            }
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The oldest entry id to keep: `retention` ago.
fn min_id(retention: Duration) -> String {
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    format!("{}-0", now.saturating_sub(millis(retention)))
}

impl crate::domain::SessionOwners for Log {
    fn owns(&self, product: &ProductId, session: &SessionId) -> bool {
        Log::owns(self, product, session)
    }
}

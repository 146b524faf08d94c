//! The journal: what a restart must not lose, written by one task with group
//! commit. Every write waiting when a transaction starts goes into it, so under
//! load one commit covers many requests, and an idle server commits each at
//! once (no timer to wait for). Ingest awaits its write before answering 200;
//! summaries, conversations and proactive state are sent without waiting (they
//! are durable a few milliseconds later). Rows expire with the lookback and
//! idle settings (`expire`), so the file stays bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::AnyPool;
use sqlx::Connection;
use sqlx::Row;

use super::{Backend, Db};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::domain::{Action, ProductId, SessionId, UserId};

/// Writes in one transaction at most (a bound on a batch's memory and time).
const MAX_BATCH: usize = 4096;

/// Why a write could not be kept.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The database refused or failed the transaction (locked, disk full, gone).
    #[error("the database could not keep the write: {0}")]
    Database(Arc<sqlx::Error>),
    /// The journal is shutting down (or its task died).
    #[error("the journal is closed")]
    Closed,
}

/// A write, in the journal's own terms (JSON is made by the caller's task).
enum Write {
    /// Accepted actions, one row each.
    Actions(Vec<ActionRow>),
    Email {
        product: ProductId,
        user: UserId,
        email: String,
        at: i64,
    },
    Summary {
        product: ProductId,
        session: SessionId,
        text: String,
        covers_seq: i64,
        next_index: i64,
        received_at: i64,
    },
    Conversation {
        key: String,
        product: Option<ProductId>,
        user: Option<UserId>,
        state: String,
        at: i64,
    },
    Proactive {
        product: ProductId,
        session: SessionId,
        state: String,
        at: i64,
    },
    EraseUser {
        product: ProductId,
        user: UserId,
        /// JSON array of the sessions the store knew for the user.
        sessions: String,
    },
    Expire(Cutoffs),
}

/// One `actions` row; the action is already JSON (made on the request's task).
struct ActionRow {
    seq: i64,
    product: ProductId,
    session: SessionId,
    user: UserId,
    received_at: i64,
    dedupe_key: String,
    action: String,
}

struct Job {
    write: Write,
    /// Told the outcome: rows deleted for an expiry, 0 for other writes.
    done: Option<oneshot::Sender<Result<u64, Error>>>,
}

/// Expired action rows deleted per transaction, so expiry never holds the
/// write lock (and ingest) for long.
const EXPIRE_CHUNK: i64 = 20_000;

/// Rows older than these (Unix ms) are deleted.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub actions: i64,
    /// Delivery ids (kept in the action rows) older than this are forgotten.
    pub deliveries: i64,
    pub conversations: i64,
    pub proactive: i64,
    pub emails: i64,
    pub now: i64,
}

/// Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Job>,
    seq: Arc<AtomicU64>,
    closed: CancellationToken,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Journal {
    /// Starts the writer on `db`. Sequence numbers continue from the
    /// database's highest (or the clock in microseconds, if that is higher),
    /// so they increase across restarts. The writer has a connection of its
    /// own (except in memory), so a commit is not also a pool checkout.
    pub async fn start(db: &Db, queue: usize) -> Result<(Self, JournalTask), super::Error> {
        let own = db.writer_connection().await?;
        let pool = db.pool.clone();
        let stored: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM actions")
            .fetch_one(&pool)
            .await
            .map_err(|source| super::Error::Open {
                url: "the journal".to_owned(),
                source,
            })?
            .get(0);
        let clock = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        let start = clock.max(u64::try_from(stored).unwrap_or(0) + 1);
        let (tx, rx) = mpsc::channel(queue.max(1));
        let closed = CancellationToken::new();
        let journal = Self {
            tx,
            seq: Arc::new(AtomicU64::new(start)),
            closed: closed.clone(),
        };
        let writer = match own {
            Some(connection) => Writer::Own {
                db: db.clone(),
                connection: Some(connection),
            },
            None => Writer::Pool(pool),
        };
        let sql = Statements::of(db.backend);
        Ok((
            journal,
            JournalTask {
                writer,
                sql,
                rx,
                closed,
            },
        ))
    }

    /// `n` consecutive sequence numbers; returns the first.
    pub fn next_seqs(&self, n: usize) -> u64 {
        self.seq.fetch_add(n as u64, Ordering::Relaxed)
    }

    /// Stops taking writes; the writer commits what is queued and ends.
    pub fn close(&self) {
        self.closed.cancel();
    }

    async fn commit(&self, write: Write) -> Result<u64, Error> {
        if self.closed.is_cancelled() {
            return Err(Error::Closed);
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                write,
                done: Some(done),
            })
            .await
            .map_err(|_| Error::Closed)?;
        wait.await.map_err(|_| Error::Closed)?
    }

    /// Queued without waiting; dropped (and logged) if the queue is full.
    fn send(&self, write: Write) {
        if self.closed.is_cancelled() {
            return;
        }
        if self.tx.try_send(Job { write, done: None }).is_err() {
            tracing::warn!("journal queue full or closed; a background write was dropped");
        }
    }

    /// Keeps accepted actions with their delivery ids (`actions[i]` came
    /// with `delivery_keys[i]`); returns once committed.
    pub async fn keep_actions(
        &self,
        product: &ProductId,
        actions: &[(u64, Action)],
        delivery_keys: &[&str],
    ) -> Result<(), Error> {
        if actions.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let rows = actions
            .iter()
            .zip(delivery_keys)
            .map(|((seq, a), key)| ActionRow {
                seq: i64::try_from(*seq).unwrap_or(i64::MAX),
                product: product.clone(),
                session: a.session_id.clone(),
                user: a.user_id.clone(),
                received_at: now,
                dedupe_key: (*key).to_owned(),
                action: json(a),
            })
            .collect();
        self.commit(Write::Actions(rows)).await.map(drop)
    }

    /// An email learnt from an `$identify`; returns once committed.
    pub async fn keep_email(
        &self,
        product: &ProductId,
        user: &UserId,
        email: &str,
    ) -> Result<(), Error> {
        self.commit(Write::Email {
            product: product.clone(),
            user: user.clone(),
            email: email.to_owned(),
            at: now_ms(),
        })
        .await
        .map(drop)
    }

    /// A conversation's state after a turn (`key` names it uniquely).
    pub fn keep_conversation(
        &self,
        key: String,
        product: Option<&ProductId>,
        user: Option<&UserId>,
        state: String,
    ) {
        self.send(Write::Conversation {
            key,
            product: product.cloned(),
            user: user.cloned(),
            state,
            at: now_ms(),
        });
    }

    /// A session's proactive state after it changed.
    pub fn keep_proactive(&self, product: &ProductId, session: &SessionId, state: String) {
        self.send(Write::Proactive {
            product: product.clone(),
            session: session.clone(),
            state,
            at: now_ms(),
        });
    }

    /// Deletes everything kept about one product's user.
    /// `sessions`: the user's sessions the store knows (their summaries and
    /// proactive states go too).
    pub async fn erase_user(
        &self,
        product: &ProductId,
        user: &UserId,
        sessions: &[SessionId],
    ) -> Result<(), Error> {
        self.commit(Write::EraseUser {
            product: product.clone(),
            user: user.clone(),
            sessions: json(&sessions),
        })
        .await
        .map(drop)
    }

    /// Deletes rows older than the cutoffs, the action rows in chunks (one
    /// transaction each, between other writes); returns how many went.
    pub async fn expire(&self, cutoffs: Cutoffs) -> Result<u64, Error> {
        let mut deleted = 0;
        loop {
            let chunk = self.commit(Write::Expire(cutoffs)).await?;
            deleted += chunk;
            if chunk < EXPIRE_CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }
}

impl crate::dialogue::ConversationSink for Journal {
    fn keep(&self, visitor: &crate::domain::Visitor, key: String, state: String) {
        self.keep_conversation(key, visitor.product.as_ref(), visitor.user.as_ref(), state);
    }
}

impl crate::proactive::ProactiveSink for Journal {
    fn keep(&self, product: &ProductId, session: &SessionId, state: String) {
        self.keep_proactive(product, session, state);
    }
}

impl crate::context::SummaryObserver for Journal {
    fn summary_stored(&self, summary: &crate::context::StoredSummary<'_>) {
        self.send(Write::Summary {
            product: summary.product.clone(),
            session: summary.session.clone(),
            text: summary.text.to_owned(),
            covers_seq: i64::try_from(summary.covers_seq).unwrap_or(i64::MAX),
            next_index: i64::try_from(summary.next_index).unwrap_or(i64::MAX),
            received_at: now_ms() - millis(summary.newest_age),
        });
    }
}

/// JSON for the bulk inserts. Our row types have string keys only, so
/// serialising cannot fail; an empty array would be the harmless fallback.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

enum Writer {
    Pool(AnyPool),
    /// The writer's own connection, opened again after a failed commit (the
    /// database may have restarted: a Postgres outage must end by itself).
    Own {
        db: Db,
        connection: Option<AnyConnection>,
    },
}

/// The writer; run it with [`JournalTask::run`].
pub struct JournalTask {
    writer: Writer,
    sql: Statements,
    rx: mpsc::Receiver<Job>,
    closed: CancellationToken,
}

impl JournalTask {
    /// Commits batches until the journal is closed, then what is still queued.
    pub async fn run(self) {
        let JournalTask {
            writer,
            sql,
            rx,
            closed,
        } = self;
        crate::group_commit::run(rx, closed, MAX_BATCH, Committer { writer, sql }).await;
    }
}

struct Committer {
    writer: Writer,
    sql: Statements,
}

impl crate::group_commit::Batches<Job> for Committer {
    async fn write(&mut self, batch: &mut Vec<Job>) {
        commit(&mut self.writer, self.sql, batch).await;
    }
}

/// One transaction for the whole batch; every job is told the outcome.
async fn commit(writer: &mut Writer, sql: Statements, batch: &mut Vec<Job>) {
    let result = match writer {
        Writer::Pool(pool) => {
            async {
                let mut c = pool.acquire().await?;
                write_batch(&mut c, sql, batch).await
            }
            .await
        }
        Writer::Own { db, connection } => {
            let result = async {
                let c = match connection {
                    Some(c) => c,
                    None => connection.insert(db.connect_writer().await?),
                };
                write_batch(c, sql, batch).await
            }
            .await;
            if result.is_err() {
                // Whatever failed, the next batch starts on a fresh
                // connection: cheap for SQLite, needed after a Postgres restart.
                *connection = None;
            }
            result
        }
    }
    .map_err(|e| Error::Database(Arc::new(e)));
    if let Err(error) = &result {
        tracing::warn!(%error, writes = batch.len(), "journal commit failed");
    }
    for (i, job) in batch.drain(..).enumerate() {
        if let Some(done) = job.done {
            let outcome = match &result {
                Ok(deleted) => Ok(deleted.get(i).copied().unwrap_or(0)),
                Err(error) => Err(error.clone()),
            };
            let _ = done.send(outcome);
        }
    }
}

/// The statements whose SQL differs between the backends.
#[derive(Clone, Copy)]
struct Statements {
    /// `$3`: a JSON array of session ids, as a set of rows.
    sessions_in: &'static str,
    /// `[n - 1]`: the `INSERT` of n action rows.
    insert_actions: &'static [String],
    /// SQLite: `[n]` writes a batch of n action rows and any other writes
    /// in one command (see [`write_in_one_command`]); Postgres runs one
    /// statement per command, so it has none.
    one_command: Option<&'static [String]>,
}

impl Statements {
    fn of(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self {
                sessions_in: "SELECT value FROM json_each($3)",
                insert_actions: &INSERT_ACTIONS_ANONYMOUS,
                one_command: Some(&SQLITE_BATCH),
            },
            Backend::Postgres => Self {
                sessions_in: "SELECT jsonb_array_elements_text($3::jsonb)",
                insert_actions: &INSERT_ACTIONS_NUMBERED,
                one_command: None,
            },
        }
    }
}

/// Action rows per `INSERT` at most: 7 parameters each stays far below
/// SQLite's and Postgres's limits on parameters. It also bounds the shapes
/// of SQLite's one-command batches (two per row count), so all of them
/// stay in sqlx's statement cache (100 per connection) with room to spare.
const ROWS_PER_INSERT: usize = 32;

/// `INSERT … VALUES (…), …` of `rows` rows, placeholders made by `p(i)`
/// (1-based). Bound values, not a JSON array the database parses again:
/// JSON took a third of the SQLite thread's time under ingest load.
fn insert_actions(rows: usize, p: impl Fn(usize) -> String) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=7).map(|c| p(r * 7 + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO actions (seq, product_id, session_id, user_id, received_at, \
         dedupe_key, action) VALUES {} ON CONFLICT (seq) DO NOTHING",
        values.join(", ")
    )
}

/// For 1 to [`ROWS_PER_INSERT`] rows (`[n - 1]` has n rows), made once;
/// each is prepared once and cached by sqlx. Postgres numbers its
/// placeholders; SQLite's are anonymous, bound in order, because SQLite
/// looks a numbered one up by name in a list as long as the statement's
/// (quadratic in a 224-parameter `INSERT`).
static INSERT_ACTIONS_NUMBERED: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_INSERT)
        .map(|rows| insert_actions(rows, |i| format!("${i}")))
        .collect()
});
static INSERT_ACTIONS_ANONYMOUS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_INSERT)
        .map(|rows| insert_actions(rows, |_| "?".to_owned()))
        .collect()
});

/// A table written by upsert: every write of a key replaces its row.
struct Upsert {
    table: &'static str,
    columns: &'static [&'static str],
    /// The primary key (the conflict target).
    key: &'static [&'static str],
    /// What a later write of the same key changes.
    set: &'static [&'static str],
}

/// The four upserted tables, in the order of [`Write::upsert_row`]'s index.
const UPSERTS: [Upsert; 4] = [
    Upsert {
        table: "user_emails",
        columns: &["product_id", "user_id", "email", "updated_at"],
        key: &["product_id", "user_id"],
        set: &["email", "updated_at"],
    },
    Upsert {
        table: "summaries",
        columns: &[
            "product_id",
            "session_id",
            "summary",
            "covers_seq",
            "next_index",
            "received_at",
        ],
        key: &["product_id", "session_id"],
        set: &["summary", "covers_seq", "next_index", "received_at"],
    },
    Upsert {
        table: "conversations",
        columns: &[
            "conversation_key",
            "product_id",
            "user_id",
            "state",
            "updated_at",
        ],
        key: &["conversation_key"],
        set: &["state", "updated_at"],
    },
    Upsert {
        table: "proactive_states",
        columns: &["product_id", "session_id", "state", "updated_at"],
        key: &["product_id", "session_id"],
        set: &["state", "updated_at"],
    },
];

impl Upsert {
    /// `INSERT INTO table (columns) {rows} ON CONFLICT … DO UPDATE …`.
    fn sql(&self, rows: &str) -> String {
        let set: Vec<String> = self
            .set
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO {} ({}) {rows} ON CONFLICT ({}) DO UPDATE SET {}",
            self.table,
            self.columns.join(", "),
            self.key.join(", "),
            set.join(", ")
        )
    }

    /// One row, bound as `$1, $2, …` (the statement-by-statement path).
    fn one_row(&self) -> String {
        let values: Vec<String> = (1..=self.columns.len()).map(|i| format!("${i}")).collect();
        self.sql(&format!("VALUES ({})", values.join(", ")))
    }

    /// Any number of rows as one JSON array of arrays (SQLite's one-command
    /// path), applied in order, so the newest write of a key wins. `WHERE
    /// true` lets SQLite parse the `ON CONFLICT` after a `SELECT`.
    fn json_rows(&self) -> String {
        let values: Vec<String> = (0..self.columns.len())
            .map(|i| format!("json_extract(value, '$[{i}]')"))
            .collect();
        self.sql(&format!(
            "SELECT {} FROM json_each(?) WHERE true",
            values.join(", ")
        ))
    }
}

/// [`Upsert::one_row`] and [`Upsert::json_rows`] of each of [`UPSERTS`], made once.
static UPSERT_ONE_ROW: LazyLock<Vec<String>> =
    LazyLock::new(|| UPSERTS.iter().map(Upsert::one_row).collect());
static UPSERT_JSON_ROWS: LazyLock<Vec<String>> =
    LazyLock::new(|| UPSERTS.iter().map(Upsert::json_rows).collect());

/// A value of an upserted row.
#[derive(Serialize)]
#[serde(untagged)]
enum Cell<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

impl Write {
    /// For an upsert: its table's index in [`UPSERTS`] and the row, in the
    /// table's column order; `None` for the other writes.
    fn upsert_row(&self) -> Option<(usize, Vec<Cell<'_>>)> {
        fn text(s: &str) -> Cell<'_> {
            Cell::Text(Some(s))
        }
        use Cell::{Int, Text};
        let row = match self {
            Write::Email {
                product,
                user,
                email,
                at,
            } => (
                0,
                vec![
                    text(product.as_str()),
                    text(user.as_str()),
                    text(email),
                    Int(*at),
                ],
            ),
            Write::Summary {
                product,
                session,
                text: summary,
                covers_seq,
                next_index,
                received_at,
            } => (
                1,
                vec![
                    text(product.as_str()),
                    text(session.as_str()),
                    text(summary),
                    Int(*covers_seq),
                    Int(*next_index),
                    Int(*received_at),
                ],
            ),
            Write::Conversation {
                key,
                product,
                user,
                state,
                at,
            } => (
                2,
                vec![
                    text(key),
                    Text(product.as_ref().map(ProductId::as_str)),
                    Text(user.as_ref().map(UserId::as_str)),
                    text(state),
                    Int(*at),
                ],
            ),
            Write::Proactive {
                product,
                session,
                state,
                at,
            } => (
                3,
                vec![
                    text(product.as_str()),
                    text(session.as_str()),
                    text(state),
                    Int(*at),
                ],
            ),
            Write::Actions(_) | Write::EraseUser { .. } | Write::Expire(_) => return None,
        };
        Some(row)
    }
}

/// `[n]`: one transaction of n action rows (none for 0) and the four
/// upserts, as one multi-statement command.
static SQLITE_BATCH: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..=ROWS_PER_INSERT)
        .map(|rows| {
            let mut statements = vec!["BEGIN IMMEDIATE".to_owned()];
            if rows > 0 {
                statements.push(INSERT_ACTIONS_ANONYMOUS[rows - 1].clone());
            }
            statements.extend(UPSERT_JSON_ROWS.iter().cloned());
            statements.push("COMMIT".to_owned());
            statements.join(";\n")
        })
        .collect()
});

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds action rows in the order of [`insert_actions`]' placeholders.
fn bind_actions<'q>(mut query: AnyQuery<'q>, rows: &[&'q ActionRow]) -> AnyQuery<'q> {
    for row in rows {
        query = query
            .bind(row.seq)
            .bind(row.product.as_str())
            .bind(row.session.as_str())
            .bind(row.user.as_str())
            .bind(row.received_at)
            .bind(row.dedupe_key.as_str())
            .bind(row.action.as_str());
    }
    query
}

/// SQLite: a batch with other writes than actions as one command to sqlx's
/// SQLite thread, when it holds at most [`ROWS_PER_INSERT`] action rows and
/// no erasure or expiry (`None`: it does not fit, or the backend has no such
/// command; write it statement by statement). Each command is a round trip
/// to that thread, a wake-up on both sides; a batch with a summary took four
/// (`BEGIN`, actions, summary, `COMMIT`), now one.
async fn write_in_one_command(
    connection: &mut AnyConnection,
    sql: Statements,
    batch: &[Job],
) -> Option<Result<(), sqlx::Error>> {
    let commands = sql.one_command?;
    let mut actions: Vec<&ActionRow> = Vec::new();
    // Each upserted table's rows, as one JSON array each.
    let mut upserts: [Vec<Vec<Cell<'_>>>; 4] = Default::default();
    for job in batch {
        match &job.write {
            Write::Actions(rows) => actions.extend(rows),
            Write::EraseUser { .. } | Write::Expire(_) => return None,
            write => {
                if let Some((table, row)) = write.upsert_row() {
                    upserts[table].push(row);
                }
            }
        }
        if actions.len() > ROWS_PER_INSERT {
            return None;
        }
    }
    let mut query = bind_actions(sqlx::query(commands[actions.len()].as_str()), &actions);
    for rows in upserts {
        query = query.bind(serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned()));
    }
    let result = query.execute(&mut *connection).await.map(drop);
    if result.is_err() {
        // A statement failed between BEGIN and COMMIT: end the transaction
        // here (the writer's own connection is also dropped; a pooled one
        // must not go back with it open).
        let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
    }
    Some(result)
}

/// Inserts the actions of consecutive ingest writes, [`ROWS_PER_INSERT`]
/// rows per statement (each statement is a round trip to sqlx's SQLite
/// thread), and empties `pending`.
async fn flush_actions(
    connection: &mut AnyConnection,
    sql: Statements,
    pending: &mut Vec<&ActionRow>,
) -> Result<(), sqlx::Error> {
    for chunk in pending.chunks(ROWS_PER_INSERT) {
        let query = sqlx::query(sql.insert_actions[chunk.len() - 1].as_str());
        bind_actions(query, chunk).execute(&mut *connection).await?;
    }
    pending.clear();
    Ok(())
}

/// Writes a batch atomically; returns the rows each job deleted.
async fn write_batch(
    connection: &mut AnyConnection,
    sql: Statements,
    batch: &[Job],
) -> Result<Vec<u64>, sqlx::Error> {
    let mut actions: Vec<&ActionRow> = Vec::new();
    let mut deleted = vec![0; batch.len()];
    // Under ingest load a batch is mostly only actions: if they fit one
    // INSERT, it is a transaction by itself, which saves BEGIN and COMMIT,
    // two of the three round trips to the database.
    if batch
        .iter()
        .all(|job| matches!(job.write, Write::Actions(_)))
    {
        actions.extend(batch.iter().flat_map(|job| match &job.write {
            Write::Actions(rows) => rows.as_slice(),
            _ => &[],
        }));
        if actions.len() <= ROWS_PER_INSERT {
            flush_actions(connection, sql, &mut actions).await?;
            return Ok(deleted);
        }
        actions.clear();
    } else if let Some(result) = write_in_one_command(connection, sql, batch).await {
        return result.map(|()| deleted);
    }
    let mut tx = connection.begin().await?;
    for (i, job) in batch.iter().enumerate() {
        if let Write::Actions(rows) = &job.write {
            actions.extend(rows);
            continue;
        }
        // Other writes keep their place after the ingest writes before them.
        flush_actions(&mut tx, sql, &mut actions).await?;
        if let Some((table, row)) = job.write.upsert_row() {
            let mut query = sqlx::query(UPSERT_ONE_ROW[table].as_str());
            for cell in row {
                query = match cell {
                    Cell::Text(text) => query.bind(text),
                    Cell::Int(int) => query.bind(int),
                };
            }
            query.execute(&mut *tx).await?;
            continue;
        }
        match &job.write {
            Write::Actions(_)
            | Write::Email { .. }
            | Write::Summary { .. }
            | Write::Conversation { .. }
            | Write::Proactive { .. } => {}
            Write::EraseUser {
                product,
                user,
                sessions,
            } => {
                let (p, u) = (product.as_str(), user.as_str());
                for table in ["summaries", "proactive_states"] {
                    let delete = format!(
                        "DELETE FROM {table} WHERE product_id = $1 AND (session_id IN \
                         (SELECT DISTINCT session_id FROM actions WHERE product_id = $1 \
                         AND user_id = $2) OR session_id IN ({}))",
                        sql.sessions_in
                    );
                    sqlx::query(&delete)
                        .bind(p)
                        .bind(u)
                        .bind(sessions)
                        .execute(&mut *tx)
                        .await?;
                }
                for sql in [
                    "DELETE FROM actions WHERE product_id = $1 AND user_id = $2",
                    "DELETE FROM user_emails WHERE product_id = $1 AND user_id = $2",
                    "DELETE FROM conversations WHERE product_id = $1 AND user_id = $2",
                ] {
                    sqlx::query(sql).bind(p).bind(u).execute(&mut *tx).await?;
                }
            }
            Write::Expire(c) => {
                let oldest_kept = c.actions.min(c.deliveries);
                deleted[i] = sqlx::query(
                    "DELETE FROM actions WHERE seq IN (SELECT seq FROM actions \
                     WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
                )
                .bind(oldest_kept)
                .bind(EXPIRE_CHUNK)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                for (sql, cutoff) in [
                    ("DELETE FROM summaries WHERE received_at < $1", c.actions),
                    (
                        "DELETE FROM conversations WHERE updated_at < $1",
                        c.conversations,
                    ),
                    (
                        "DELETE FROM proactive_states WHERE updated_at < $1",
                        c.proactive,
                    ),
                    ("DELETE FROM user_emails WHERE updated_at < $1", c.emails),
                ] {
                    sqlx::query(sql).bind(cutoff).execute(&mut *tx).await?;
                }
            }
        }
    }
    flush_actions(&mut tx, sql, &mut actions).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// What the journal holds, read back at start-up (oldest first).
#[derive(Debug, Default)]
pub struct Restored {
    /// (product, session, summary, next index, age).
    pub summaries: Vec<(ProductId, SessionId, String, u64, Duration)>,
    /// (product, seq, action, age).
    pub actions: Vec<(ProductId, u64, Action, Duration)>,
    /// (product, key).
    pub deliveries: Vec<(ProductId, String)>,
    /// (product, user, email).
    pub emails: Vec<(ProductId, UserId, String)>,
    /// (key, state JSON, age).
    pub conversations: Vec<(String, String, Duration)>,
    /// (product, session, state JSON, age).
    pub proactive: Vec<(ProductId, SessionId, String, Duration)>,
    /// Rows that did not parse (skipped, counted).
    pub skipped: usize,
}

/// Reads back every row newer than the cutoffs.
pub async fn restore(pool: &AnyPool, cutoffs: Cutoffs) -> Result<Restored, sqlx::Error> {
    let now = cutoffs.now;
    let age = |at: i64| Duration::from_millis(u64::try_from(now - at).unwrap_or(0));
    let mut restored = Restored::default();
    let rows = sqlx::query(
        "SELECT product_id, session_id, summary, next_index, received_at, covers_seq \
         FROM summaries WHERE received_at >= $1",
    )
    .bind(cutoffs.actions)
    .fetch_all(pool)
    .await?;
    // What each summary replaced is not restored as raw actions.
    let mut covered: HashMap<(String, String), i64> = HashMap::new();
    for row in rows {
        let (product, session): (String, String) = (row.get(0), row.get(1));
        match (ProductId::parse(&product), SessionId::parse(&session)) {
            (Ok(p), Ok(s)) => {
                let next: i64 = row.get(3);
                restored.summaries.push((
                    p,
                    s,
                    row.get(2),
                    u64::try_from(next).unwrap_or(0),
                    age(row.get(4)),
                ));
                covered.insert((product, session), row.get(5));
            }
            _ => restored.skipped += 1,
        }
    }
    let rows = sqlx::query(
        "SELECT product_id, session_id, seq, received_at, dedupe_key, action FROM actions \
         WHERE received_at >= $1 ORDER BY seq",
    )
    .bind(cutoffs.actions.min(cutoffs.deliveries))
    .fetch_all(pool)
    .await?;
    for row in rows {
        let (product, session): (String, String) = (row.get(0), row.get(1));
        let (seq, received_at): (i64, i64) = (row.get(2), row.get(3));
        let Ok(p) = ProductId::parse(&product) else {
            restored.skipped += 1;
            continue;
        };
        if received_at >= cutoffs.deliveries {
            restored.deliveries.push((p.clone(), row.get(4)));
        }
        let summarised = covered
            .get(&(product, session))
            .is_some_and(|&covers| seq <= covers);
        if received_at < cutoffs.actions || summarised {
            continue;
        }
        match serde_json::from_str::<Action>(row.get(5)) {
            Ok(a) => {
                restored
                    .actions
                    .push((p, u64::try_from(seq).unwrap_or(0), a, age(received_at)))
            }
            Err(_) => restored.skipped += 1,
        }
    }
    let rows =
        sqlx::query("SELECT product_id, user_id, email FROM user_emails WHERE updated_at >= $1")
            .bind(cutoffs.emails)
            .fetch_all(pool)
            .await?;
    for row in rows {
        match (ProductId::parse(row.get(0)), UserId::parse(row.get(1))) {
            (Ok(p), Ok(u)) => restored.emails.push((p, u, row.get(2))),
            _ => restored.skipped += 1,
        }
    }
    let rows = sqlx::query(
        "SELECT conversation_key, state, updated_at FROM conversations WHERE updated_at >= $1 \
         ORDER BY updated_at",
    )
    .bind(cutoffs.conversations)
    .fetch_all(pool)
    .await?;
    for row in rows {
        restored
            .conversations
            .push((row.get(0), row.get(1), age(row.get(2))));
    }
    let rows = sqlx::query(
        "SELECT product_id, session_id, state, updated_at FROM proactive_states \
         WHERE updated_at >= $1",
    )
    .bind(cutoffs.proactive)
    .fetch_all(pool)
    .await?;
    for row in rows {
        match (ProductId::parse(row.get(0)), SessionId::parse(row.get(1))) {
            (Ok(p), Ok(s)) => restored.proactive.push((p, s, row.get(2), age(row.get(3)))),
            _ => restored.skipped += 1,
        }
    }
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::{
        INSERT_ACTIONS_ANONYMOUS, INSERT_ACTIONS_NUMBERED, ROWS_PER_INSERT, SQLITE_BATCH, UPSERTS,
    };

    #[test]
    fn each_insert_has_seven_parameters_per_row() {
        assert_eq!(INSERT_ACTIONS_NUMBERED.len(), ROWS_PER_INSERT);
        assert!(INSERT_ACTIONS_NUMBERED[0].contains("VALUES ($1, $2, $3, $4, $5, $6, $7) ON"));
        let last = &INSERT_ACTIONS_NUMBERED[ROWS_PER_INSERT - 1];
        assert_eq!(last.matches("), (").count(), ROWS_PER_INSERT - 1);
        assert!(last.ends_with(&format!(
            "${}) ON CONFLICT (seq) DO NOTHING",
            ROWS_PER_INSERT * 7
        )));
        let anonymous = &INSERT_ACTIONS_ANONYMOUS[ROWS_PER_INSERT - 1];
        assert_eq!(anonymous.matches('?').count(), ROWS_PER_INSERT * 7);
        assert!(!anonymous.contains('$'));
    }

    /// Every kind of write the one-command path takes, queued before the
    /// writer runs so they are one batch, on a SQLite file (the writer's own
    /// connection, as in production): all of it reads back, and of two
    /// states for one key the newer wins.
    #[tokio::test]
    async fn one_batch_of_every_kind_of_write_reads_back_with_the_newest_state() {
        every_kind_of_write_in_one_batch(2).await;
    }

    /// More actions than one `INSERT` holds: the batch is written statement
    /// by statement (the path Postgres always takes), with the same outcome.
    #[tokio::test]
    async fn a_batch_too_big_for_one_command_reads_back_the_same() {
        every_kind_of_write_in_one_batch(ROWS_PER_INSERT + 8).await;
    }

    async fn every_kind_of_write_in_one_batch(n: usize) {
        use super::{Cutoffs, Journal, now_ms, restore};
        use crate::context::{StoredSummary, SummaryObserver};
        use crate::domain::{Action, ActionKind, ProductId, SessionId, UserId};
        use std::time::Duration;

        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::load_with_env(None, |_| None).unwrap();
        settings.database.url = format!("sqlite://{}/journal.db", dir.path().display());
        let db = crate::db::connect(&settings.database).await.unwrap();
        let (journal, task) = Journal::start(&db, 100).await.unwrap();
        let product = ProductId::parse("acme").unwrap();
        let session = SessionId::parse("s1").unwrap();
        let user = UserId::parse("u1").unwrap();
        let action = Action {
            kind: ActionKind::Click,
            title: "Click 'Save'".into(),
            phrase: "clicked 'Save' button on /projects/:id".into(),
            label: Some("Save".into()),
            page: "/projects/:id".into(),
            canonical_url: "https://app.example.com/projects/:id".into(),
            raw_url: "https://app.example.com/projects/42".into(),
            timestamp: chrono::Utc::now(),
            session_id: session.clone(),
            user_id: user.clone(),
            email: None,
        };
        journal.keep_proactive(&product, &session, "older".into());
        journal.keep_conversation("c1".into(), Some(&product), None, "first".into());
        journal.summary_stored(&StoredSummary {
            product: &product,
            session: &session,
            text: "Opened projects; it's \"quoted\"",
            replaces: 3,
            covers_seq: 7,
            next_index: 4,
            newest_age: Duration::from_secs(1),
        });
        journal.keep_conversation("c1".into(), Some(&product), None, "second".into());
        journal.keep_proactive(&product, &session, "newer".into());
        let first = journal.next_seqs(n);
        let actions: Vec<(u64, Action)> = (first..).zip(vec![action; n]).collect();
        let keys: Vec<String> = (1..=n).map(|i| format!("d{i}")).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        // The test's runtime has one thread: the writer starts only once
        // both awaited writes below are queued too.
        let writer = tokio::spawn(task.run());
        let (email, kept) = tokio::join!(
            journal.keep_email(&product, &user, "u1@example.com"),
            journal.keep_actions(&product, &actions, &key_refs),
        );
        email.unwrap();
        kept.unwrap();
        journal.close();
        writer.await.unwrap();

        let cutoffs = Cutoffs {
            actions: 0,
            deliveries: 0,
            conversations: 0,
            proactive: 0,
            emails: 0,
            now: now_ms(),
        };
        let restored = restore(&db.pool, cutoffs).await.unwrap();
        assert_eq!(restored.skipped, 0);
        assert_eq!(restored.actions.len(), n);
        let deliveries: Vec<_> = keys.iter().map(|k| (product.clone(), k.clone())).collect();
        assert_eq!(restored.deliveries, deliveries);
        assert_eq!(
            restored.emails,
            [(product.clone(), user.clone(), "u1@example.com".into())]
        );
        let [(_, _, text, next_index, _)] = restored.summaries.as_slice() else {
            panic!("one summary: {:?}", restored.summaries);
        };
        assert_eq!(
            (text.as_str(), *next_index),
            ("Opened projects; it's \"quoted\"", 4)
        );
        let [(key, state, _)] = restored.conversations.as_slice() else {
            panic!("one conversation: {:?}", restored.conversations);
        };
        assert_eq!((key.as_str(), state.as_str()), ("c1", "second"));
        let [(_, _, state, _)] = restored.proactive.as_slice() else {
            panic!("one proactive state: {:?}", restored.proactive);
        };
        assert_eq!(state, "newer");
    }

    #[test]
    fn a_sqlite_batch_is_one_transaction_with_its_actions_and_every_upsert() {
        assert_eq!(SQLITE_BATCH.len(), ROWS_PER_INSERT + 1);
        for (rows, command) in SQLITE_BATCH.iter().enumerate() {
            assert!(command.starts_with("BEGIN IMMEDIATE;"));
            assert!(command.ends_with(";\nCOMMIT"));
            assert_eq!(command.contains("INSERT INTO actions"), rows > 0);
            // The actions' placeholders, then one JSON array per upsert.
            assert_eq!(command.matches('?').count(), rows * 7 + UPSERTS.len());
        }
    }
}

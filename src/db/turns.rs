//! The console's record of chat turns and proactive offers (`turns`): written
//! in the background in batches, so answering never waits for the database,
//! and read by the console's searches, transcripts, inbox and numbers.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::console::{Filter, Scope, StatRow, TurnRow};
use crate::dialogue::Responder;
use crate::dialogue::record::{Feedback, TurnDetail, TurnRecord, TurnSink};
use crate::metrics::Metrics;

/// Writes per transaction at most (one commit for a burst of turns).
const BATCH: usize = 4096;
/// How long the writer lets turns gather before a commit. Each commit
/// rewrites the pages of the table and its indexes, so committing every turn
/// on its own cost more than the turn; the console can be this much behind.
const LINGER: std::time::Duration = std::time::Duration::from_millis(100);

enum Write {
    Record(Box<TurnRecord>),
    Feedback {
        conversation_id: String,
        turn_id: String,
        feedback: Feedback,
    },
    /// A user's erasure: after every record queued before it.
    Erase {
        product: String,
        user: String,
        done: tokio::sync::oneshot::Sender<Result<u64, String>>,
    },
}

/// Records turns (through [`TurnSink`]) and reads them back.
#[derive(Clone)]
pub struct TurnLog {
    pool: AnyPool,
    queue: mpsc::Sender<Write>,
    metrics: Metrics,
}

/// A value bound to a query built at run time.
enum Arg {
    Text(String),
    Int(i64),
}

const COLUMNS: &str = "id, conversation_id, product_id, user_id, sender, at, kind, text, \
                       intent, responder, llm_ms, feedback, label, detail";

impl TurnLog {
    /// Starts the writer on `tasks`; it writes what is queued and stops on `shutdown`.
    pub fn start(
        pool: AnyPool,
        queue: usize,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
        metrics: Metrics,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(queue.max(1));
        tasks.spawn(write_loop(pool.clone(), receiver, shutdown));
        Self {
            pool,
            queue: sender,
            metrics,
        }
    }

    fn send(&self, write: Write) {
        if self.queue.try_send(write).is_err() {
            self.metrics.console_dropped.inc();
        }
    }

    /// Deletes a product's user's turns, including any still queued; returns how many.
    pub async fn erase_user(&self, product: &str, user: &str) -> Result<u64, String> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue
            .send(Write::Erase {
                product: product.to_owned(),
                user: user.to_owned(),
                done,
            })
            .await
            .map_err(|_| "the console's writer has stopped".to_owned())?;
        // Dropped unanswered: the batch it was in failed (logged by the writer).
        result
            .await
            .map_err(|_| "the console's turns could not be written or erased".to_owned())?
    }

    /// Turns matching `filter`, newest first.
    pub async fn search(
        &self,
        scope: &Scope,
        filter: &Filter,
    ) -> Result<Vec<TurnRow>, sqlx::Error> {
        let mut sql = format!("SELECT {COLUMNS} FROM turns WHERE kind = 'turn'");
        let mut args = Vec::new();
        scoped(&mut sql, &mut args, scope);
        let and = |sql: &mut String, args: &mut Vec<Arg>, clause: &str, arg: Arg| {
            args.push(arg);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(user) = &filter.user {
            and(
                &mut sql,
                &mut args,
                " AND user_id = ?",
                Arg::Text(user.clone()),
            );
        }
        if let Some(text) = &filter.text {
            let pattern = format!("%{}%", like_escaped(&text.to_lowercase()));
            args.push(Arg::Text(pattern));
            let n = args.len();
            sql.push_str(&format!(
                " AND (LOWER(text) LIKE ${n} ESCAPE '\\' OR LOWER(reply) LIKE ${n} ESCAPE '\\')"
            ));
        }
        if let Some(intent) = &filter.intent {
            and(
                &mut sql,
                &mut args,
                " AND intent = ?",
                Arg::Text(intent.clone()),
            );
        }
        if let Some(responder) = filter.responder {
            and(
                &mut sql,
                &mut args,
                " AND responder = ?",
                Arg::Text(responder.as_str().to_owned()),
            );
        }
        if let Some(from) = filter.from_ms {
            and(&mut sql, &mut args, " AND at >= ?", Arg::Int(from));
        }
        if let Some(to) = filter.to_ms {
            and(&mut sql, &mut args, " AND at < ?", Arg::Int(to));
        }
        sql.push_str(&format!(" ORDER BY at DESC LIMIT {}", filter.limit.max(1)));
        self.rows(&sql, args).await
    }

    /// A conversation's turns and offers, oldest first.
    pub async fn conversation(&self, scope: &Scope, id: &str) -> Result<Vec<TurnRow>, sqlx::Error> {
        let mut sql = format!("SELECT {COLUMNS} FROM turns WHERE conversation_id = $1");
        let mut args = vec![Arg::Text(id.to_owned())];
        scoped(&mut sql, &mut args, scope);
        sql.push_str(" ORDER BY at, id LIMIT 10000");
        self.rows(&sql, args).await
    }

    /// Messages that fell back or were ambiguous and have no label yet, newest first.
    pub async fn inbox(&self, scope: &Scope, limit: usize) -> Result<Vec<TurnRow>, sqlx::Error> {
        let mut sql = format!(
            "SELECT {COLUMNS} FROM turns WHERE kind = 'turn' AND inbox = 1 AND label IS NULL"
        );
        let mut args = Vec::new();
        scoped(&mut sql, &mut args, scope);
        sql.push_str(&format!(" ORDER BY at DESC LIMIT {}", limit.max(1)));
        self.rows(&sql, args).await
    }

    /// `(id, text)` of the turns among `ids` that `scope` may see, in one query.
    pub async fn texts(
        &self,
        scope: &Scope,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args: Vec<Arg> = ids.iter().map(|id| Arg::Text(id.clone())).collect();
        let mut sql = format!(
            "SELECT id, text FROM turns WHERE kind = 'turn' AND id IN ({})",
            placeholders(1, ids.len())
        );
        scoped(&mut sql, &mut args, scope);
        let rows = bound(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    /// Marks turns as labelled (they leave the inbox), in one statement.
    pub async fn set_label(&self, ids: &[String], label: &str) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE turns SET label = $1 WHERE id IN ({})",
            placeholders(2, ids.len())
        );
        let mut args = vec![Arg::Text(label.to_owned())];
        args.extend(ids.iter().map(|id| Arg::Text(id.clone())));
        bound(sqlx::query(&sql), args).execute(&self.pool).await?;
        Ok(())
    }

    /// What the numbers are counted from, since `since_ms`, by conversation and time.
    pub async fn stat_rows(
        &self,
        scope: &Scope,
        since_ms: i64,
    ) -> Result<Vec<StatRow>, sqlx::Error> {
        let mut sql = "SELECT conversation_id, at, kind, intent, responder, llm_ms, feedback \
                       FROM turns WHERE at >= $1"
            .to_owned();
        let mut args = vec![Arg::Int(since_ms)];
        scoped(&mut sql, &mut args, scope);
        sql.push_str(" ORDER BY conversation_id, at LIMIT 1000000");
        let rows = bound(sqlx::query(&sql), args).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let intent: Option<String> = row.get(3);
                StatRow {
                    conversation_id: row.get(0),
                    at_ms: row.get(1),
                    offer: row.get::<String, _>(2) == "offer",
                    fallback: intent.as_deref() == Some(crate::nlu::FALLBACK),
                    intent,
                    responder: Responder::parse(&row.get::<String, _>(4))
                        .unwrap_or(Responder::None),
                    llm_ms: row.get(5),
                    feedback: row.get(6),
                }
            })
            .collect())
    }

    /// Deletes turns recorded before `before_ms`, a thousand at a time so the
    /// writer is never held up for long; returns how many.
    pub async fn expire(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM turns WHERE id IN \
                 (SELECT id FROM turns WHERE at < $1 ORDER BY at LIMIT 1000)",
            )
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
            total += done.rows_affected();
            if done.rows_affected() < 1000 {
                return Ok(total);
            }
        }
    }

    async fn rows(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<TurnRow>, sqlx::Error> {
        let rows = bound(sqlx::query(sql), args).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(turn_row).collect())
    }
}

impl TurnSink for TurnLog {
    fn record(&self, record: TurnRecord) {
        self.send(Write::Record(Box::new(record)));
    }

    fn feedback(&self, conversation_id: &str, turn_id: &str, feedback: Feedback) {
        self.send(Write::Feedback {
            conversation_id: conversation_id.to_owned(),
            turn_id: turn_id.to_owned(),
            feedback,
        });
    }
}

fn scoped(sql: &mut String, args: &mut Vec<Arg>, scope: &Scope) {
    if let Scope::Product(product) = scope {
        args.push(Arg::Text(product.as_str().to_owned()));
        sql.push_str(&format!(" AND product_id = ${}", args.len()));
    }
}

fn bound<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
        };
    }
    query
}

/// `$first, $first+1, …`: `count` numbered placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `%`, `_` and `\` match themselves.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn turn_row(row: &AnyRow) -> TurnRow {
    let at_ms: i64 = row.get(5);
    let detail: String = row.get(13);
    TurnRow {
        id: row.get(0),
        conversation_id: row.get(1),
        product: row.get(2),
        user: row.get(3),
        sender: row.get(4),
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
        kind: row.get(6),
        text: row.get(7),
        intent: row.get(8),
        responder: row.get(9),
        llm_ms: row.get(10),
        feedback: row.get(11),
        label: row.get(12),
        // Written by us; a row from a newer version still shows its columns.
        detail: serde_json::from_str(&detail).unwrap_or_else(|_| TurnDetail::default()),
    }
}

async fn write_loop(pool: AnyPool, mut queue: mpsc::Receiver<Write>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            write = queue.recv() => match write {
                Some(write) => write,
                None => return,
            },
            () = shutdown.cancelled() => {
                // What was queued before the stop is still written.
                loop {
                    let mut batch = Vec::new();
                    while batch.len() < BATCH {
                        match queue.try_recv() {
                            Ok(write) => batch.push(write),
                            Err(_) => break,
                        }
                    }
                    if batch.is_empty() {
                        return;
                    }
                    write_batch(&pool, batch).await;
                }
            }
        };
        // Under load the queue already holds a batch: no need to wait.
        if queue.len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = shutdown.cancelled() => {}
            }
        }
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        write_batch(&pool, batch).await;
    }
}

async fn write_batch(pool: &AnyPool, batch: Vec<Write>) {
    let mut erased = Vec::new();
    let result = try_write_batch(pool, batch, &mut erased).await;
    if let Err(error) = &result {
        // The console misses these turns; chat goes on.
        tracing::warn!(%error, "could not record chat turns for the console");
    }
    for (done, count) in erased {
        let _ = done.send(match &result {
            Ok(()) => Ok(count),
            Err(error) => Err(error.to_string()),
        });
    }
}

type Erased = (tokio::sync::oneshot::Sender<Result<u64, String>>, u64);

/// Rows per INSERT: each statement is one hand-off to SQLite's worker thread,
/// so a burst of turns is a few statements, not one per turn. Not more:
/// sqlx looks bound values up by name, which costs in the square of their
/// number (at 128 rows, 1,792 values, that lookup was 16% of the server's CPU).
const ROWS_PER_INSERT: usize = 16;
const INSERT_COLUMNS: usize = 14;

async fn try_write_batch(
    pool: &AnyPool,
    batch: Vec<Write>,
    erased: &mut Vec<Erased>,
) -> Result<(), sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut records: Vec<TurnRecord> = Vec::new();
    for write in batch {
        if let Write::Record(record) = write {
            records.push(*record);
            if records.len() == ROWS_PER_INSERT {
                insert(&mut transaction, std::mem::take(&mut records)).await?;
            }
            continue;
        }
        // Feedback and erasures apply to every record queued before them.
        if !records.is_empty() {
            insert(&mut transaction, std::mem::take(&mut records)).await?;
        }
        match write {
            Write::Record(_) => {}
            Write::Feedback {
                conversation_id,
                turn_id,
                feedback,
            } => {
                sqlx::query(
                    "UPDATE turns SET feedback = $1 WHERE id = $2 AND conversation_id = $3 \
                     AND kind = 'turn'",
                )
                .bind(feedback.as_str())
                .bind(turn_id)
                .bind(conversation_id)
                .execute(&mut *transaction)
                .await?;
            }
            Write::Erase {
                product,
                user,
                done,
            } => {
                let deleted =
                    sqlx::query("DELETE FROM turns WHERE product_id = $1 AND user_id = $2")
                        .bind(product)
                        .bind(user)
                        .execute(&mut *transaction)
                        .await;
                match deleted {
                    Ok(done_rows) => erased.push((done, done_rows.rows_affected())),
                    Err(error) => {
                        let _ = done.send(Err(error.to_string()));
                        return Err(error);
                    }
                }
            }
        }
    }
    if !records.is_empty() {
        insert(&mut transaction, records).await?;
    }
    transaction.commit().await
}

/// One INSERT of up to [`ROWS_PER_INSERT`] records.
async fn insert(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    records: Vec<TurnRecord>,
) -> Result<(), sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO turns (id, conversation_id, product_id, user_id, sender, at, kind, text, \
         reply, intent, responder, inbox, llm_ms, detail) VALUES ",
    );
    let rows: Vec<String> = (0..records.len())
        .map(|row| {
            format!(
                "({})",
                placeholders(row * INSERT_COLUMNS + 1, INSERT_COLUMNS)
            )
        })
        .collect();
    sql.push_str(&rows.join(", "));
    let mut query = sqlx::query(&sql);
    for record in records {
        let detail = serde_json::to_string(&record.detail).unwrap_or_default();
        let inbox = i64::from(record.for_inbox());
        let reply = record.detail.replies.join("\n\n");
        let TurnRecord {
            id,
            conversation_id,
            product,
            user,
            sender,
            at_ms,
            kind,
            text,
            intent,
            responder,
            llm_ms,
            ..
        } = record;
        query = query
            .bind(id)
            .bind(conversation_id)
            .bind(product.map(|p| p.as_str().to_owned()))
            .bind(user.map(|u| u.as_str().to_owned()))
            .bind(sender)
            .bind(at_ms)
            .bind(kind.as_str())
            .bind(text)
            .bind(reply)
            .bind(intent)
            .bind(responder.as_str())
            .bind(inbox)
            .bind(llm_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
            .bind(detail);
    }
    query.execute(&mut **transaction).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dialogue::record::{RecordKind, TurnDetail};
    use crate::dialogue::{Feedback, Responder};

    fn record(n: usize) -> TurnRecord {
        TurnRecord {
            id: format!("t_{n:04}"),
            conversation_id: "c_1".to_owned(),
            product: None,
            user: None,
            sender: "s".to_owned(),
            at_ms: 1_000 + i64::try_from(n).unwrap_or(0),
            kind: RecordKind::Turn,
            text: format!("message {n}"),
            intent: Some("greet".to_owned()),
            responder: Responder::Rule,
            llm_ms: None,
            detail: TurnDetail::default(),
        }
    }

    #[tokio::test]
    async fn a_burst_is_written_in_several_inserts_with_feedback_after_its_turn() {
        let mut settings = crate::config::Settings::load_with_env(None, |_| None).unwrap();
        settings.database.url = "sqlite::memory:".to_owned();
        let main = super::super::connect(&settings.database).await.unwrap();
        let db = super::super::connect_console(&settings.database, &main)
            .await
            .unwrap();
        let tasks = TaskTracker::new();
        let log = TurnLog::start(
            db.pool.clone(),
            1_000,
            &tasks,
            CancellationToken::new(),
            Metrics::new(),
        );
        // More than one INSERT's worth, queued before the writer runs.
        for n in 0..300 {
            log.record(record(n));
        }
        log.feedback("c_1", "t_0299", Feedback::Down);
        log.feedback("c_other", "t_0001", Feedback::Up);
        let erased = log.erase_user("nobody", "nobody").await.unwrap();
        assert_eq!(erased, 0);
        let filter = Filter {
            limit: 1_000,
            ..Filter::default()
        };
        let rows = log.search(&Scope::All, &filter).await.unwrap();
        assert_eq!(rows.len(), 300);
        assert_eq!(rows[0].id, "t_0299");
        assert_eq!(rows[0].feedback.as_deref(), Some("down"));
        assert_eq!(rows[299].text, "message 0");
        assert_eq!(
            (rows[1].id.as_str(), rows[1].feedback.as_deref()),
            ("t_0298", None)
        );
        // Feedback names the conversation too: another's is ignored.
        assert_eq!(
            (rows[298].id.as_str(), rows[298].feedback.as_deref()),
            ("t_0001", None)
        );
        // Expiry takes the oldest, and only those.
        assert_eq!(log.expire(1_000 + 150).await.unwrap(), 150);
        let rows = log.search(&Scope::All, &filter).await.unwrap();
        assert_eq!((rows.len(), rows[149].id.as_str()), (150, "t_0150"));
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_escaped("50%_off\\"), "50\\%\\_off\\\\");
    }
}

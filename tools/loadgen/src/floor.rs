//! The durable floor, the second baseline for ingest (`loadgen bare-server
//! --durable FILE`, its own process like the bare server): the bare server,
//! but it also commits one row per event to SQLite before it answers, with
//! the server's own group commit, through sqlx as the server does. No auth, no classifying,
//! no store, no de-dupe: the most a server that keeps what it acknowledges
//! can do on this machine.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use copilot_server::group_commit;
use serde_json::Value;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// One accepted event on its way to the database.
struct Row {
    seq: i64,
    session: String,
    user: String,
    dedupe_key: String,
    action: String,
    done: oneshot::Sender<bool>,
}

/// The most a batch holds (one multi-row INSERT).
const MAX_ROWS: usize = 64;

/// Serves the floor on `port` over the SQLite file `database` (WAL,
/// `synchronous = NORMAL`, the server's table and index). What is left of
/// its gap to the bare server is the price of durability itself.
pub async fn serve(port: u16, database: &Path) -> anyhow::Result<()> {
    let app = durable_app(database).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The floor's routes, over a database it opens (and creates) at `database`.
async fn durable_app(database: &Path) -> anyhow::Result<Router> {
    let options = SqliteConnectOptions::new()
        .filename(database)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut connection = SqliteConnection::connect_with(&options).await?;
    // The server's own migration: the same `actions` table and index.
    sqlx::raw_sql(include_str!("../../../migrations/0003_state.sql"))
        .execute(&mut connection)
        .await?;
    let (tx, rx) = mpsc::channel(4096);
    // The server's own group commit (its scheduler passes included): on
    // the floor too, 0, 1 and 8 passes and a writer on a thread of its own
    // were slower (BENCHMARKS.md). The floor runs until it is killed, so
    // nothing closes it.
    tokio::spawn(group_commit::run(
        rx,
        CancellationToken::new(),
        MAX_ROWS,
        Committer::new(connection),
    ));
    let state = Durable {
        tx,
        seq: Arc::new(AtomicI64::new(1)),
    };
    Ok(Router::new()
        .route("/webhook/{product}", post(webhook_durable))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state))
}

#[derive(Clone)]
struct Durable {
    tx: mpsc::Sender<Row>,
    seq: Arc<AtomicI64>,
}

/// The server's answer to a delivery of one new event.
const ACCEPTED: &str = r#"{"accepted":1,"ignored":0,"duplicates":0}"#;

async fn webhook_durable(State(state): State<Durable>, body: Bytes) -> (StatusCode, &'static str) {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "");
    };
    let event = &body["event"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let properties = &event["properties"];
    let action = format!(
        "{} {} on {}",
        text(&event["event"]),
        text(&properties["$el_text"]),
        text(&properties["$pathname"])
    );
    let (done, committed) = oneshot::channel();
    let row = Row {
        seq: state.seq.fetch_add(1, Ordering::Relaxed),
        session: text(&properties["$session_id"]),
        user: text(&event["distinct_id"]),
        dedupe_key: text(&event["uuid"]),
        action,
        done,
    };
    if state.tx.send(row).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "");
    }
    match committed.await {
        Ok(true) => (StatusCode::OK, ACCEPTED),
        _ => (StatusCode::SERVICE_UNAVAILABLE, ""),
    }
}

/// Writes a batch of rows as one command to sqlx's SQLite thread.
struct Committer {
    connection: SqliteConnection,
    /// `commands[n - 1]`: the transaction for a batch of `n` rows.
    commands: Vec<String>,
}

impl Committer {
    fn new(connection: SqliteConnection) -> Self {
        let commands = (1..=MAX_ROWS)
            .map(|n| {
                let rows = vec!["(?, 'demo', ?, ?, ?, ?, ?)"; n].join(", ");
                format!("BEGIN; INSERT INTO actions VALUES {rows}; COMMIT;")
            })
            .collect();
        Self {
            connection,
            commands,
        }
    }
}

impl group_commit::Batches<Row> for Committer {
    async fn write(&mut self, batch: &mut Vec<Row>) {
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(0);
        let mut query = sqlx::query(&self.commands[batch.len() - 1]);
        for row in batch.iter() {
            query = query
                .bind(row.seq)
                .bind(row.session.as_str())
                .bind(row.user.as_str())
                .bind(now)
                .bind(row.dedupe_key.as_str())
                .bind(row.action.as_str());
        }
        let ok = query.execute(&mut self.connection).await.is_ok();
        if !ok {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.connection).await;
        }
        for row in batch.drain(..) {
            let _ = row.done.send(ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor only means something if it keeps what it acknowledges:
    /// an answered event is a row in the file, and a body that is not JSON
    /// is refused.
    #[tokio::test]
    async fn an_answered_event_is_a_row_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("floor.db");
        let app = durable_app(&database).await.unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let fixture = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/posthog-webhook-autocapture.json"),
        )
        .unwrap();
        let http = reqwest::Client::new();
        let answer = http
            .post(format!("{base}/webhook/demo"))
            .body(fixture)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), ACCEPTED);

        let mut reader =
            SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&database))
                .await
                .unwrap();
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT dedupe_key, user_id, action FROM actions")
                .fetch_all(&mut reader)
                .await
                .unwrap();
        assert_eq!(
            rows,
            [(
                "01932a7c-5b1e-7a3e-9d3c-2f6a1c0e4b11".to_owned(),
                "user_42".to_owned(),
                "$autocapture Save changes on /projects/8812".to_owned()
            )]
        );

        let refused = http
            .post(format!("{base}/webhook/demo"))
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
    }
}

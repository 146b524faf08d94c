//! What survives a restart: the real binary on a SQLite file, killed with
//! SIGKILL (no shutdown code runs) and started again on the same file.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::fake_llm::{Behaviour, FakeLlm, user_text};
use crate::helpers::{API_KEY, PRODUCT, SECRET, click_event, spawn_app_with};

/// The server binary on `database`, on a free port.
struct Server {
    child: Child,
    address: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(database: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_copilot-server"));
        command
            .env_remove("RUST_LOG")
            .env("COPILOT__DATABASE__URL", database)
            .env("COPILOT__SERVER__PORT", "0")
            .env("COPILOT__SERVER__LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("copilot-server listening") {
                    let log: Value = serde_json::from_str(&line).unwrap();
                    return log["fields"]["port"].as_u64().unwrap();
                }
            }
            panic!("binary exited before listening");
        })
        .await
        .expect("binary starts in time");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    /// SIGKILL: nothing is flushed, nothing is closed.
    async fn kill_9(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn webhook(&self, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(format!("{}/webhook/{PRODUCT}", self.address))
            .header("X-PostHog-Secret", SECRET)
            .json(body)
            .send()
            .await
    }

    async fn context(&self, user: &str) -> String {
        let body: Value = self
            .client
            .get(format!("{}/context/{user}", self.address))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["context"].as_str().unwrap().to_owned()
    }

    async fn reply(&self, user: &str, query: &str) -> Value {
        self.client
            .get(format!("{}/reply/{user}", self.address))
            .bearer_auth(API_KEY)
            .query(&[("query", query)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn database_in(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("copilot.db").display())
}

pub fn event(n: usize) -> Value {
    click_event(
        &format!("00000000-0000-4000-8000-{n:012}"),
        &format!("load-user-{n}"),
        &format!("load-session-{n}"),
        &format!("Button {n}"),
        "https://app.example.com/projects/7",
    )
}

/// Events sent by 8 clients at once; the server is killed mid-load. Every
/// event that was answered 200 is there after the restart, and its retry is
/// still a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_answered_200_survives_kill_9_during_load() {
    let dir = tempfile::tempdir().unwrap();
    kill_9_during_load(&database_in(&dir), &[]).await;
}

/// The kill -9 check on `database` (SQLite here, Postgres in `postgres.rs`),
/// or on Redis (`env` sets `[store]`, in `scaleout.rs`).
pub async fn kill_9_during_load(database: &str, env: &[(&str, &str)]) {
    let server = Server::start(database, env).await;

    // A session long enough to be summarised (threshold 10), before the load.
    let mut summarised = Vec::new();
    for i in 0..12 {
        let body = click_event(
            &format!("10000000-0000-4000-8000-{i:012}"),
            "summary-user",
            "summary-session",
            &format!("Step {i}"),
            "https://app.example.com/projects/7",
        );
        assert_eq!(
            server.webhook(&body).await.unwrap().status(),
            StatusCode::OK
        );
        summarised.push(body);
    }
    let summary_before = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let context = server.context("summary-user").await;
            if context.to_lowercase().contains("summary") {
                return context;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the session is summarised");

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, address) = (server.client.clone(), server.address.clone());
            let (acknowledged, next) = (acknowledged.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let response = client
                        .post(format!("{address}/webhook/{PRODUCT}"))
                        .header("X-PostHog-Secret", SECRET)
                        .json(&event(n))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == StatusCode::OK => {
                            let body: Value = match r.json().await {
                                Ok(body) => body,
                                Err(_) => return,
                            };
                            assert_eq!(body["accepted"], 1, "{body}");
                            acknowledged.lock().unwrap().push(n);
                        }
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill_9().await;
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "load ran: {} acknowledged",
        acknowledged.len()
    );

    let server = Server::start(database, env).await;
    let mut missing = Vec::new();
    for &n in &acknowledged {
        if !server
            .context(&format!("load-user-{n}"))
            .await
            .contains(&format!("Button {n}"))
        {
            missing.push(n);
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    assert_eq!(
        server.context("summary-user").await,
        summary_before,
        "the summary and what followed it are back as they were"
    );
    // PostHog retries a delivery it is unsure of: still a duplicate.
    let retry: Value = server
        .webhook(&event(acknowledged[0]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["duplicates"], 1, "{retry}");
    assert_eq!(retry["accepted"], 0, "{retry}");
    let retry: Value = server
        .webhook(&summarised[0])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["duplicates"], 1, "summarised events too: {retry}");
}

/// One delivery of 150 events (more than one `INSERT` holds, so several
/// statements in one transaction): after its 200 and a kill -9, all 150 are
/// back, and the whole retry is duplicates.
#[tokio::test]
async fn a_large_batch_is_kept_whole_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_in(&dir);
    let server = Server::start(&database, &[]).await;
    let events: Vec<Value> = (5000..5150).map(event).collect();
    let body = serde_json::json!({ "batch": events });
    let response = server.webhook(&body).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 150, "{answer}");
    server.kill_9().await;

    let server = Server::start(&database, &[]).await;
    for n in (5000..5150).step_by(7).chain([5149]) {
        assert!(
            server
                .context(&format!("load-user-{n}"))
                .await
                .contains(&format!("Button {n}")),
            "event {n} is back"
        );
    }
    let retry: Value = server.webhook(&body).await.unwrap().json().await.unwrap();
    assert_eq!(retry["duplicates"], 150, "{retry}");
    assert_eq!(retry["accepted"], 0, "{retry}");
}

/// A conversation's turns are in the LLM's history after a kill -9, and a
/// user erased before it stays erased.
#[tokio::test]
async fn a_conversation_continues_after_kill_9_and_an_erasure_stays() {
    let fake = FakeLlm::start(Behaviour::Answer("Here is how.".into())).await;
    let dir = tempfile::tempdir().unwrap();
    let database = database_in(&dir);
    let env = [
        ("COPILOT__LLM__API_KEY", "test-key"),
        ("COPILOT__LLM__BASE_URL", fake.base_url.as_str()),
    ];
    let server = Server::start(&database, &env).await;
    let first = "can I colour-code my boards by client?";
    server.reply("chatty", first).await;
    assert_eq!(
        fake.chat_requests().len(),
        1,
        "the question went to the LLM"
    );
    server.webhook(&event(1)).await.unwrap();
    let erase = server
        .client
        .delete(format!("{}/users/load-user-1", server.address))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(erase.status(), StatusCode::OK);
    // Conversations are written a few milliseconds after the reply.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9().await;

    let server = Server::start(&database, &env).await;
    server
        .reply("chatty", "and can I export those boards to a spreadsheet?")
        .await;
    let requests = fake.chat_requests();
    let last = requests.last().unwrap();
    let history = serde_json::to_string(&last["messages"]).unwrap() + &user_text(last);
    assert!(
        history.contains("colour-code my boards"),
        "the earlier turn is in the history: {history}"
    );
    assert!(
        !server.context("load-user-1").await.contains("Button 1"),
        "erased before the restart, still erased"
    );
}

/// With the database locked by another process, ingest answers 503 with
/// Retry-After (never 200 for what it could not keep); once the lock is
/// gone the retry is accepted, not taken for a duplicate.
#[tokio::test]
async fn a_locked_database_gets_503_and_the_retry_is_accepted_afterwards() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let database = database_in(&dir);
    let url = database.clone();
    let app = spawn_app_with(move |s| {
        s.database.url = url;
        s.database.busy_timeout_ms = Duration::from_millis(200);
    })
    .await;
    let body = event(7);
    let mut other = sqlx::SqliteConnection::connect(&database).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();

    let refused = app
        .client
        .post(app.url(&format!("/webhook/{PRODUCT}")))
        .header("X-PostHog-Secret", SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refusal: Value = refused.json().await.unwrap();
    assert!(refusal["error"].is_string(), "{refusal}");
    assert!(
        !app.context("load-user-7").await["context"]
            .as_str()
            .unwrap()
            .contains("Button 7")
    );

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let accepted = app.deliver_json(&body).await;
    assert_eq!(accepted["accepted"], 1, "{accepted}");
    assert!(
        app.context("load-user-7").await["context"]
            .as_str()
            .unwrap()
            .contains("Button 7")
    );
}

/// Rows past the lookback are deleted: the file stays bounded.
#[tokio::test]
async fn old_rows_are_deleted() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let database = database_in(&dir);
    let url = database.clone();
    let app = spawn_app_with(move |s| {
        s.database.url = url;
        s.database.expire_seconds = Duration::from_secs(1);
        s.context.lookback_seconds = 1.0;
        s.context.dedupe_ttl_seconds = 1;
    })
    .await;
    app.deliver_json(&event(1)).await;
    let mut db = sqlx::SqliteConnection::connect(&database).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM actions")
            .fetch_one(&mut db)
            .await
            .unwrap(),
        1
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let actions = count("SELECT COUNT(*) FROM actions")
                .fetch_one(&mut db)
                .await
                .unwrap();
            if actions == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("expired rows are deleted");
}

/// SIGTERM drains: a reply in progress is finished and answered, and an open
/// socket is closed at the transport (so socket.io clients reconnect) rather
/// than sent a DISCONNECT (which tells them not to); the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_tells_sockets_to_reconnect() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let fake = FakeLlm::start(Behaviour::Slow(Duration::from_millis(1500))).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("COPILOT__LLM__API_KEY", "test-key"),
        ("COPILOT__LLM__BASE_URL", fake.base_url.as_str()),
        ("COPILOT__LLM__TIMEOUT_MS", "5000"),
    ];
    let mut server = Server::start(&database_in(&dir), &env).await;
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        server.address.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("socket closed before connecting");
        };
        if text.starts_with('0') {
            ws.send(Message::Text("40".into())).await.unwrap();
        } else if text.starts_with("40") {
            break;
        }
    }

    let in_flight = {
        let (client, address) = (server.client.clone(), server.address.clone());
        tokio::spawn(async move {
            client
                .get(format!("{address}/reply/drain-user"))
                .bearer_auth(API_KEY)
                .query(&[("query", "can I colour-code my boards by client?")])
                .send()
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while fake.requests().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the reply reached the LLM");
    let pid = server.child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());

    let mut packets = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                packets.push(text.to_string());
            }
        }
    })
    .await
    .expect("the socket is closed promptly");
    assert!(
        !packets.iter().any(|p| p.starts_with("41")),
        "no socket.io DISCONNECT, only a transport close: {packets:?}"
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the reply in flight is answered");
    assert_eq!(response.status(), StatusCode::OK);
    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert!(status.success(), "{status}");
}

//! `GET /stream/{product}` with a real SSE client (reqwest, frames parsed as
//! the spec says), push delivery to a real HTTP receiver, and the real
//! autoplay-sdk consuming both.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use copilot_server::config::{ProductSettings, Settings};
use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    API_KEY, PRODUCT, SECRET, TestApp, click_event, eventually, metric, product, python_or_skip,
    run_python_check, spawn_app_with,
};

const STREAM_KEY: &str = "demo-stream-key-change-me";

/// One server-sent event as a client sees it.
#[derive(Debug, Default, Clone)]
struct SseFrame {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl SseFrame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    async fn connect(app: &TestApp, product: &str, key: &str, last_id: Option<&str>) -> Self {
        let mut request = app
            .client
            .get(app.url(&format!("/stream/{product}")))
            .header("accept", "text/event-stream")
            .bearer_auth(key);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame within `wait`, or `None`.
    async fn next(&mut self, wait: Duration) -> Option<SseFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = SseFrame::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                frame.data = data.join("\n");
                return Some(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next frame that is not a heartbeat.
    async fn next_data(&mut self, wait: Duration) -> Option<SseFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next(left).await?;
            if frame.event.as_deref() != Some("heartbeat") {
                return Some(frame);
            }
        }
    }
}

fn click(uuid: &str, user: &str, session: &str, label: &str) -> Value {
    click_event(
        uuid,
        user,
        session,
        label,
        "https://app.example.com/projects/42?tab=1",
    )
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn refusals_are_json_before_any_stream_byte() {
    let app = spawn_app_with(|_| {}).await;
    let cases = [
        ("nope", Some(STREAM_KEY), StatusCode::NOT_FOUND),
        (PRODUCT, None, StatusCode::UNAUTHORIZED),
        (PRODUCT, Some("wrong-key"), StatusCode::UNAUTHORIZED),
        // The api_key is not the stream key.
        (PRODUCT, Some(API_KEY), StatusCode::UNAUTHORIZED),
    ];
    for (product, key, status) in cases {
        let mut request = app
            .client
            .get(app.url(&format!("/stream/{product}")))
            .header("accept", "text/event-stream");
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{product} {key:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{product} {key:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_webhook_batch_becomes_an_actions_frame_and_its_summary_follows() {
    let app = spawn_app_with(|s| s.context.summary_threshold = 3).await;
    let mut sse = SseClient::connect(&app, PRODUCT, STREAM_KEY, None).await;
    let batch = json!({"batch": [
        click("e1", "ada", "s-1", "Edit"),
        click("e2", "ada", "s-1", "Save changes"),
    ]});
    app.deliver_json(&batch).await;

    let frame = sse.next_data(WAIT).await.expect("actions frame");
    assert!(
        frame
            .id
            .as_deref()
            .is_some_and(|id| id.parse::<u64>().is_ok())
    );
    let payload = frame.json();
    assert_eq!(payload["type"], "actions");
    assert_eq!(payload["product_id"], PRODUCT);
    assert_eq!(payload["session_id"], "s-1");
    assert_eq!(payload["user_id"], "ada");
    assert_eq!(payload["email"], "ada@example.com");
    assert_eq!(payload["count"], 2);
    assert!(payload["forwarded_at"].as_f64().unwrap() > 1.7e9);
    let actions = payload["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    for (i, action) in actions.iter().enumerate() {
        assert_eq!(action["index"], i);
        for field in ["type", "title", "description", "canonical_url", "raw_url"] {
            assert!(
                action[field].as_str().is_some_and(|v| !v.is_empty()),
                "{field}: {action}"
            );
        }
        assert!(action["timestamp_start"].as_f64().unwrap() > 1.7e9);
        assert_eq!(action["timestamp_start"], action["timestamp_end"]);
    }
    assert_eq!(actions[1]["title"], "Click 'Save changes'");
    assert_eq!(
        actions[0]["raw_url"],
        "https://app.example.com/projects/42?tab=1"
    );

    // A third action reaches the summary threshold.
    app.deliver_json(&click("e3", "ada", "s-1", "Close")).await;
    let frame = sse.next_data(WAIT).await.expect("actions frame");
    assert_eq!(frame.json()["count"], 1);
    let frame = sse.next_data(WAIT).await.expect("summary frame");
    let summary = frame.json();
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["session_id"], "s-1");
    assert_eq!(summary["product_id"], PRODUCT);
    assert_eq!(summary["replaces"], 3);
    assert!(summary["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(summary["forwarded_at"].as_f64().is_some());

    // A retried delivery is a duplicate: no second frame.
    app.deliver_json(&click("e3", "ada", "s-1", "Close")).await;
    assert!(sse.next_data(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_gets_what_it_missed_or_a_gap() {
    let app = spawn_app_with(|s| s.stream.replay_events = 3).await;
    let mut first = SseClient::connect(&app, PRODUCT, STREAM_KEY, None).await;
    app.deliver_json(&click("r0", "ada", "s-0", "Zero")).await;
    let seen = first.next_data(WAIT).await.unwrap();
    let seen_id = seen.id.clone().unwrap();
    drop(first);

    for (i, label) in ["One", "Two"].iter().enumerate() {
        app.deliver_json(&click(
            &format!("r{}", i + 1),
            "ada",
            &format!("s-{}", i + 1),
            label,
        ))
        .await;
    }
    let mut again = SseClient::connect(&app, PRODUCT, STREAM_KEY, Some(&seen_id)).await;
    let one = again.next_data(WAIT).await.unwrap();
    let two = again.next_data(WAIT).await.unwrap();
    assert_eq!(one.json()["session_id"], "s-1");
    assert_eq!(two.json()["session_id"], "s-2");
    let ids: Vec<u64> = [&seen, &one, &two]
        .iter()
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    drop(again);

    // Three more: the ring (3) no longer holds s-1 and s-2.
    for i in 3..6 {
        app.deliver_json(&click(&format!("r{i}"), "ada", &format!("s-{i}"), "More"))
            .await;
    }
    let mut late = SseClient::connect(&app, PRODUCT, STREAM_KEY, Some(&seen_id)).await;
    let gap = late.next_data(WAIT).await.unwrap();
    assert_eq!(gap.json(), json!({"type": "gap", "missed": 2}));
    assert!(gap.id.is_none(), "a gap frame moves no Last-Event-ID");
    for i in 3..6 {
        let frame = late.next_data(WAIT).await.unwrap();
        assert_eq!(frame.json()["session_id"], format!("s-{i}"));
    }

    // An id from before this process started.
    let mut old = SseClient::connect(&app, PRODUCT, STREAM_KEY, Some("12")).await;
    let gap = old.next_data(WAIT).await.unwrap().json();
    assert_eq!(gap["type"], "gap");
    assert_eq!(gap["restarted"], true);
}

#[tokio::test]
async fn heartbeats_come_when_nothing_happens() {
    let app = spawn_app_with(|s| s.stream.heartbeat_seconds = Duration::from_millis(200)).await;
    let mut sse = SseClient::connect(&app, PRODUCT, STREAM_KEY, None).await;
    let frame = sse.next(Duration::from_secs(3)).await.expect("a heartbeat");
    assert_eq!(frame.event.as_deref(), Some("heartbeat"));
    assert_eq!(frame.data, "");
    assert!(frame.id.is_none());
}

fn two_products(s: &mut Settings) {
    let keyed = |id: &str, secret: &str, key: &str| ProductSettings {
        stream_key: Some(key.to_owned().into()),
        ..product(id, secret)
    };
    s.products.push(keyed(
        "alpha",
        "alpha-secret-0123456789",
        "alpha-stream-key",
    ));
    s.products
        .push(keyed("beta", "beta-secret-0123456789", "beta-stream-key"));
}

#[tokio::test]
async fn a_stream_carries_only_its_own_products_sessions() {
    let app = spawn_app_with(two_products).await;
    // One product's key opens no other product's stream.
    let response = app
        .client
        .get(app.url("/stream/beta"))
        .bearer_auth("alpha-stream-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let mut beta = SseClient::connect(&app, "beta", "beta-stream-key", None).await;
    let alpha_event = click("a1", "same-user", "alpha-session", "Alpha");
    let response = app
        .post_webhook(
            "alpha",
            Some("alpha-secret-0123456789"),
            alpha_event.to_string(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let beta_event = click("b1", "same-user", "beta-session", "Beta");
    let response = app
        .post_webhook(
            "beta",
            Some("beta-secret-0123456789"),
            beta_event.to_string(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let frame = beta.next_data(WAIT).await.unwrap().json();
    assert_eq!(frame["product_id"], "beta");
    assert_eq!(frame["session_id"], "beta-session");
    assert!(beta.next_data(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_loses_frames_and_is_told_while_ingest_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| {
        s.stream.subscriber_queue = 16;
        s.stream.replay_events = 0;
        // A batch per delivery.
        s.stream.batch = Duration::ZERO;
    })
    .await;
    // A raw client with a tiny receive buffer that reads nothing for now.
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut idle = socket.connect(address).await.unwrap();
    idle.write_all(
        format!(
            "GET /stream/{PRODUCT} HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {STREAM_KEY}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Far more than the socket buffers hold: one frame per session.
    for round in 0..80 {
        let batch: Vec<Value> = (0..200)
            .map(|i| {
                click(
                    &format!("q{round}-{i}"),
                    "ada",
                    &format!("s-{round}-{i}"),
                    "Go",
                )
            })
            .collect();
        let delivered = app.deliver_json(&json!({ "batch": batch })).await;
        assert_eq!(delivered["accepted"], 200);
    }
    let dropped = metric(&app.metrics().await, "copilot_stream_frames_dropped_total");
    // Now read: the gap frame comes once the writer gets past what the
    // socket held.
    let mut seen = Vec::new();
    let mut buffer = vec![0u8; 1 << 16];
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = idle.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the stream ended");
            seen.extend_from_slice(&buffer[..n]);
            if let Some(at) = memchr_gap(&seen) {
                return String::from_utf8_lossy(&seen[at..]).to_string();
            }
            // Keep only a tail that may hold the start of a gap frame.
            let keep = seen.len().saturating_sub(64);
            seen.drain(..keep);
        }
    })
    .await
    .expect("a gap frame");
    let line = found.lines().next().unwrap();
    let gap: Value = serde_json::from_str(line.trim_start_matches("data: ")).unwrap();
    assert_eq!(gap["type"], "gap");
    assert!(gap["missed"].as_u64().unwrap() > 0, "{gap}");
    assert!(
        dropped > 0.0 || metric(&app.metrics().await, "copilot_stream_frames_dropped_total") > 0.0
    );
}

/// Where `data: {"type":"gap"` starts in `bytes`.
fn memchr_gap(bytes: &[u8]) -> Option<usize> {
    let needle = br#"data: {"type":"gap""#;
    bytes.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn too_many_subscribers_are_told_to_come_back() {
    let app = spawn_app_with(|s| s.stream.max_subscribers = 1).await;
    let _first = SseClient::connect(&app, PRODUCT, STREAM_KEY, None).await;
    let response = app
        .client
        .get(app.url("/stream/demo"))
        .bearer_auth(STREAM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        metric(&app.metrics().await, "copilot_stream_subscribers"),
        1.0
    );
}

/// What a push receiver saw: each request's signature header and body.
type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A push receiver: records every request, answers from `script` in order
/// (then 200).
struct Receiver {
    url: String,
    seen: Seen,
}

async fn receiver(script: Vec<u16>) -> Receiver {
    let seen: Seen = Arc::default();
    let answers = Arc::new(Mutex::new(script));
    let record = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let record = Arc::clone(&record);
            let answers = Arc::clone(&answers);
            async move {
                let signature = headers
                    .get("x-connector-signature")
                    .map(|v| v.to_str().unwrap().to_owned());
                record.lock().push((signature, body));
                let mut answers = answers.lock();
                let status = if answers.is_empty() {
                    200
                } else {
                    answers.remove(0)
                };
                AxumStatus::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, seen }
}

fn fast_push(s: &mut Settings) {
    s.stream.allow_private_forward = true;
    s.stream.forward_first_retry = Duration::from_millis(50);
    s.stream.forward_max_retry = Duration::from_millis(200);
    s.stream.forward_max_attempts = 4;
}

/// Push delivery is on once this returns: the PATCH starts the forwarder.
async fn set_forward(app: &TestApp, url: &str, secret: &str) {
    let response = app
        .send_json(
            reqwest::Method::PATCH,
            "/products/demo",
            Some(API_KEY),
            &json!({"forward_url": url, "forward_secret": secret}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["forward_url"], url);
    assert_eq!(view["has_forward_secret"], true);
}

fn expected_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn pushes_are_signed_and_retried_after_5xx_until_delivered() {
    let hook = receiver(vec![503, 500]).await;
    let app = spawn_app_with(fast_push).await;
    set_forward(&app, &hook.url, "push-secret").await;
    app.deliver_json(&click("p1", "ada", "s-push", "Save changes"))
        .await;

    let seen = Arc::clone(&hook.seen);
    let all = eventually(WAIT, || {
        let seen = Arc::clone(&seen);
        async move {
            let seen = seen.lock();
            (seen.len() >= 3).then(|| seen.clone())
        }
    })
    .await
    .expect("three attempts");
    assert_eq!(all.len(), 3, "no attempt after the delivery");
    for (signature, body) in &all {
        assert_eq!(body, &all[0].1, "the same body every attempt");
        assert_eq!(
            signature.as_deref(),
            Some(expected_signature("push-secret", body).as_str())
        );
    }
    let payload: Value = serde_json::from_str(&all[0].1).unwrap();
    assert_eq!(payload["type"], "actions");
    assert_eq!(payload["session_id"], "s-push");
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"copilot_stream_push_total{product="demo",outcome="retried"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            &metrics,
            r#"copilot_stream_push_total{product="demo",outcome="delivered"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let hook = receiver(vec![400]).await;
    let app = spawn_app_with(fast_push).await;
    set_forward(&app, &hook.url, "push-secret").await;
    app.deliver_json(&click("p1", "ada", "s-push", "Save changes"))
        .await;
    let seen = Arc::clone(&hook.seen);
    eventually(WAIT, || {
        let seen = Arc::clone(&seen);
        async move { (!seen.lock().is_empty()).then_some(()) }
    })
    .await
    .expect("one attempt");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.seen.lock().len(), 1);
    assert_eq!(
        metric(
            &app.metrics().await,
            r#"copilot_stream_push_total{product="demo",outcome="rejected"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn private_forward_urls_are_refused_by_default() {
    let app = spawn_app_with(|s| {
        s.admin.open_registration = true;
    })
    .await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "ftp://example.com/",
    ] {
        let response = app
            .send_json(
                reqwest::Method::PATCH,
                "/products/demo",
                Some(API_KEY),
                &json!({ "forward_url": url }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("forward_url"),
            "{body}"
        );
    }
    let register = |forward_url: &'static str| {
        let body = json!({
            "product_id": "newco",
            "contact_email": "ops@newco.example",
            "forward_url": forward_url,
            "forward_secret": "",
        });
        let app = &app;
        async move {
            app.send_json(reqwest::Method::POST, "/products", None, &body)
                .await
        }
    };
    let response = register("http://10.0.0.5/hook").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The SDK's own onboarding sends them empty: no push, no refusal.
    let response = register("").await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_real_autoplay_sdk_reads_our_stream_and_accepts_our_pushes() {
    let Some(python) = python_or_skip("autoplay_sdk") else {
        return;
    };
    let push_port = crate::services::free_port();
    let app = spawn_app_with(|s| {
        fast_push(s);
        // Python takes a while to start: keep retrying for ~10 s.
        s.stream.forward_max_attempts = 50;
    })
    .await;
    // Set before the receiver listens: the first attempts are refused
    // connections, retried until it is up.
    set_forward(
        &app,
        &format!("http://127.0.0.1:{push_port}/"),
        "sdk-push-secret",
    )
    .await;
    let push_port = push_port.to_string();
    run_python_check(
        &python,
        "stream_sdk.py",
        &[
            "--base-url",
            &app.address,
            "--product-id",
            PRODUCT,
            "--stream-key",
            STREAM_KEY,
            "--webhook-secret",
            SECRET,
            "--push-secret",
            "sdk-push-secret",
            "--push-port",
            &push_port,
        ],
        Duration::from_secs(90),
        "9 passed, 0 failed",
    )
    .await;
}

#[tokio::test]
async fn a_stream_outlives_the_request_timeout_and_ends_at_shutdown() {
    let mut settings = Settings::load_with_env(None, |_| None).unwrap();
    settings.server.port = 0;
    settings.database.url = "sqlite::memory:".to_owned();
    settings.server.request_timeout_ms = 1_500;
    settings.llm.turn_deadline_ms = 400;
    let app = copilot_server::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let mut response = client
        .get(format!("{address}/stream/demo"))
        .bearer_auth(STREAM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Longer than the request timeout: the stream is not cut with a 408.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let delivered = client
        .post(format!("{address}/webhook/{PRODUCT}"))
        .header("X-PostHog-Secret", SECRET)
        .body(click("late", "ada", "s-late", "Late").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), StatusCode::OK);
    let chunk = tokio::time::timeout(WAIT, response.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&chunk).contains("s-late"));

    // Shutdown ends the stream instead of waiting for it forever.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops with a subscriber connected")
        .unwrap()
        .unwrap();
    let rest = tokio::time::timeout(WAIT, response.chunk()).await.unwrap();
    assert!(matches!(rest, Ok(None) | Err(_)), "{rest:?}");
}

#[tokio::test]
async fn a_client_that_takes_gzip_gets_the_same_frames_compressed() {
    use std::io::Write;
    let app = spawn_app_with(|_| {}).await;
    let mut response = app
        .client
        .get(app.url("/stream/demo"))
        .bearer_auth(STREAM_KEY)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    for i in 0..3 {
        app.deliver_json(&click(&format!("g{i}"), "ada", &format!("s-gz-{i}"), "Zip"))
            .await;
    }
    let mut inflate = flate2::write::GzDecoder::new(Vec::new());
    let text = tokio::time::timeout(WAIT, async {
        loop {
            let chunk = response.chunk().await.unwrap().unwrap();
            inflate.write_all(&chunk).unwrap();
            inflate.flush().unwrap();
            let text = String::from_utf8_lossy(inflate.get_ref()).to_string();
            if text.contains("s-gz-2") {
                return text;
            }
        }
    })
    .await
    .expect("three frames, inflated");
    let frames: Vec<Value> = text
        .split("\n\n")
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let sessions: Vec<&str> = frames
        .iter()
        .map(|f| f["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, ["s-gz-0", "s-gz-1", "s-gz-2"]);
    assert!(text.lines().filter(|l| l.starts_with("id: ")).count() == 3);
}

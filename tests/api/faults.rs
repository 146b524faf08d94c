//! Faults and hostile input: the LLM misbehaving, clients misbehaving, overload.
//! Every case ends by checking the server still answers.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{
    API_KEY, TestApp, fixture, metric, spawn_app, spawn_app_with, spawn_app_with_llm,
};
use crate::socket_client::{SocketClient, texts};

const OFF_TOPIC: &str = "how do I rename a project?";

async fn still_healthy(app: &TestApp) {
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    let mut socket = SocketClient::connect(&app.address, None)
        .await
        .expect("a new client connects");
    socket.start_session(Some("after")).await;
    socket.say("after", "someone", "hello").await;
    assert!(!socket.replies().await.is_empty(), "and gets answers");
}

async fn wait_for_requests(fake: &FakeLlm, n: usize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while fake.requests().len() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the LLM was called");
}

#[tokio::test]
async fn a_rate_limited_or_hung_up_llm_still_gets_a_polite_reply_in_time() {
    for (behaviour, why) in [
        (Behaviour::RateLimited, "429"),
        (Behaviour::HangUp, "connection closed mid-body"),
    ] {
        let fake = FakeLlm::start(behaviour).await;
        let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 500).await;
        app.deliver(fixture("posthog-webhook-autocapture.json"))
            .await;
        let started = Instant::now();
        let reply = app.reply_json("user_42", OFF_TOPIC).await;
        let text = reply["reply"].as_str().unwrap();
        assert!(text.starts_with("Sorry"), "{why}: {text}");
        assert!(
            text.contains("From the help pages, **Edit a project"),
            "{why}: {text}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{why}");
        still_healthy(&app).await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_turn_leaves_the_server_healthy() {
    let fake = FakeLlm::start(Behaviour::Slow(Duration::from_millis(400))).await;
    let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 1_000).await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("leaver")).await;
    socket.say("leaver", "u", OFF_TOPIC).await;
    wait_for_requests(&fake, 1).await;
    socket.disconnect().await;
    still_healthy(&app).await;
}

#[tokio::test]
async fn a_flood_of_session_requests_is_answered_and_harmless() {
    let app = spawn_app().await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    for i in 0..1000 {
        socket
            .emit(
                "session_request",
                json!({ "session_id": format!("flood-{i}") }),
            )
            .await;
    }
    // Confirms beyond the per-socket queue may be dropped: bounded, not buffered.
    let mut confirmed = 0;
    while let Some(id) = socket
        .try_next("session_confirm", Duration::from_millis(500))
        .await
    {
        assert!(
            id.as_str().is_some_and(|id| id.starts_with("flood-")),
            "{id}"
        );
        confirmed += 1;
    }
    assert!((1..=1000).contains(&confirmed), "{confirmed} confirms");
    still_healthy(&app).await;
}

#[tokio::test]
async fn a_10_mb_socket_message_is_refused_without_harm() {
    let app = spawn_app().await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("big")).await;
    let huge = "x".repeat(10 * 1024 * 1024);
    socket.say("big", "u", &huge).await;
    assert!(
        socket
            .try_next("bot_uttered", Duration::from_millis(500))
            .await
            .is_none(),
        "no reply to an oversized message"
    );
    still_healthy(&app).await;
}

#[tokio::test]
async fn malformed_socket_io_packets_leave_the_server_healthy() {
    let app = spawn_app().await;
    let handshake = app
        .client
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: Value = serde_json::from_str(handshake.trim_start_matches('0')).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let url = app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}"));
    let garbage: [&[u8]; 7] = [
        b"40",
        b"42[\"user_uttered\",",
        b"4garbage{{{",
        b"451-[",
        b"\xff\xfe\x00",
        b"2probe\x1e6\x1e40{",
        b"42[\"session_request\",{\"session_id\":[1,2]}]",
    ];
    for body in garbage {
        let response = app
            .client
            .post(&url)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().as_u16() < 500,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            response.status()
        );
    }
    // Malformed engine.io paths too.
    for path in [
        "/socket.io/?EIO=9&transport=polling",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
    }
    still_healthy(&app).await;
}

#[tokio::test]
async fn at_capacity_requests_get_503_with_retry_after() {
    let fake = FakeLlm::start(Behaviour::Slow(Duration::from_millis(800))).await;
    let app = spawn_app_with_llm(&fake, |s| {
        s.server.max_concurrent_requests = 1;
        s.llm.timeout_ms = 2_000;
        s.llm.retries = 0;
    })
    .await;
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/reply/u?query=how%20do%20I%20rename%20a%20project");
        async move {
            client
                .get(url)
                .bearer_auth(API_KEY)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    wait_for_requests(&fake, 1).await;
    let shed = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("capacity"));
    assert_eq!(
        slow.await.unwrap(),
        StatusCode::OK,
        "the admitted request completes"
    );
    let metrics = app.metrics().await;
    assert!(
        metric(&metrics, "copilot_overloaded_requests_total ") >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn llm_calls_beyond_the_concurrency_limit_get_the_template_answer() {
    let fake = FakeLlm::start(Behaviour::Slow(Duration::from_secs(3))).await;
    let app = spawn_app_with_llm(&fake, |s| {
        s.llm.max_concurrent_requests = 1;
        s.llm.timeout_ms = 1_000;
        s.llm.retries = 0;
    })
    .await;
    let (a, b) = tokio::join!(
        app.reply_json("u1", OFF_TOPIC),
        app.reply_json("u2", OFF_TOPIC)
    );
    for reply in [a, b] {
        assert!(
            reply["reply"].as_str().unwrap().starts_with("Sorry"),
            "{reply}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metric(&metrics, "copilot_llm_calls_total{outcome=\"busy\"} ") >= 1.0,
        "{metrics}"
    );
    assert_eq!(fake.requests().len(), 1, "only one call reached the LLM");
}

#[tokio::test]
async fn metrics_cover_events_rejections_sockets_turns_and_summaries() {
    let app = spawn_app_with(|s| s.context.summary_threshold = 2).await;
    app.deliver(fixture("batch.json")).await;
    app.post_webhook("demo", Some("wrong"), fixture("batch.json"))
        .await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("m")).await;
    socket.say("m", "user_42", "what did I just do?").await;
    assert!(texts(&socket.replies().await).contains("Billing"));
    let text = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let text = app.metrics().await;
            if metric(&text, "copilot_summaries_total{outcome=\"stored\"} ") >= 1.0 {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a summary was counted");
    for (line, at_least) in [
        ("copilot_events_total{outcome=\"accepted\"} ", 2.0),
        (
            "copilot_events_rejected_total{reason=\"unauthorized\"} ",
            1.0,
        ),
        ("copilot_sockets_connected ", 1.0),
        (
            "copilot_chat_turns_total{intent=\"ask_what_just_happened\"} ",
            1.0,
        ),
        ("copilot_store_sessions ", 1.0),
        ("copilot_store_users ", 1.0),
    ] {
        assert!(metric(&text, line) >= at_least, "{line} in\n{text}");
    }
    socket.disconnect().await;
}

#[tokio::test]
async fn oversized_headers_are_refused_without_harm() {
    let app = spawn_app().await;
    // hyper bounds a request head (100 headers, ~400 KiB buffered); beyond it
    // the request is refused with 431 before any of our code runs.
    let huge = "x".repeat(1024 * 1024);
    let outcome = app
        .client
        .get(app.url("/healthz"))
        .header("x-filler", huge)
        .send()
        .await;
    match outcome {
        Ok(response) => assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        // The server may close the connection while the client still writes.
        Err(error) => assert!(error.is_request() || error.is_connect(), "{error}"),
    }
    let mut request = app.client.get(app.url("/healthz"));
    for i in 0..200 {
        request = request.header(format!("x-h{i}"), "1");
    }
    let response = request.send().await;
    assert!(
        response.as_ref().map_or(true, |r| r.status()
            == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        "200 headers: {response:?}"
    );
    still_healthy(&app).await;
}

#[tokio::test]
async fn metrics_count_the_raw_actions_the_store_holds() {
    let app = spawn_app().await;
    let scrape = || async {
        let text = app.metrics().await;
        metric(&text, "copilot_store_actions ")
    };
    assert_eq!(scrape().await, 0.0);
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    assert_eq!(scrape().await, 1.0);
    // A retried delivery adds nothing.
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    assert_eq!(scrape().await, 1.0);
}

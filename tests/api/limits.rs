//! Abuse limits: messages per socket and per user per minute, LLM answers per
//! user per hour, and metric labels that no client can mint.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{metric, spawn_app, spawn_app_with, spawn_app_with_llm};
use crate::socket_client::{SocketClient, texts};

pub const SLOW_DOWN: &str = "please slow down";

#[tokio::test]
async fn a_socket_past_its_messages_per_minute_is_asked_to_slow_down_and_nothing_queues() {
    let app = spawn_app_with(|s| s.chat.max_messages_per_minute = 3).await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("s")).await;
    for i in 0..3 {
        socket.say("s", "u1", &format!("are you a bot? {i}")).await;
        let text = texts(&socket.replies().await);
        assert!(
            !text.contains(SLOW_DOWN),
            "message {i} is within the limit: {text}"
        );
    }
    socket.say("s", "u1", "are you a bot?").await;
    assert!(texts(&socket.replies().await).contains(SLOW_DOWN));
    // The server stays healthy and other users are unaffected.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut other = SocketClient::connect(&app.address, None).await.unwrap();
    other.start_session(Some("t")).await;
    other.say("t", "u2", "are you a bot?").await;
    assert!(!texts(&other.replies().await).contains(SLOW_DOWN));
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "copilot_rate_limited_total{limit=\"messages\"} "),
        1.0
    );
}

pub async fn rest_text(app: &crate::helpers::TestApp, sender: &str, user: &str) -> String {
    let items: Vec<Value> = app
        .client
        .post(app.url("/webhooks/rest/webhook"))
        .json(&json!({"sender": sender, "message": "are you a bot?", "metadata": {"userId": user}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    texts(&items)
}

#[tokio::test]
async fn one_user_is_limited_across_conversations_and_channels() {
    let app = spawn_app_with(|s| s.chat.max_messages_per_minute = 2).await;
    assert!(!rest_text(&app, "conv-a", "u1").await.contains(SLOW_DOWN));
    assert!(!rest_text(&app, "conv-b", "u1").await.contains(SLOW_DOWN));
    assert!(
        rest_text(&app, "conv-c", "u1").await.contains(SLOW_DOWN),
        "a new sender id does not reset the user's allowance"
    );
    let reply: Value = app.reply_json("u1", "are you a bot?").await;
    assert!(
        reply["reply"].as_str().unwrap().contains(SLOW_DOWN),
        "/reply counts too"
    );
    assert!(!rest_text(&app, "conv-d", "u2").await.contains(SLOW_DOWN));
}

#[tokio::test]
async fn past_the_hourly_llm_allowance_the_user_is_told_and_answered_from_templates() {
    let fake = FakeLlm::start(Behaviour::Answer("From the model.".to_owned())).await;
    let app = spawn_app_with_llm(&fake, |s| s.llm.max_calls_per_user_per_hour = 1).await;
    // A question no rule answers, so the LLM is asked.
    let ask = "qwxz plmok vrrt";
    let first: Value = app.reply_json("u1", ask).await;
    assert_eq!(first["reply"], "From the model.");
    let second: Value = app.reply_json("u1", ask).await;
    let text = second["reply"].as_str().unwrap();
    assert!(text.contains("without my language model"), "{text}");
    assert_eq!(
        fake.chat_requests().len(),
        1,
        "the second answer made no LLM call"
    );
    let other: Value = app.reply_json("u2", ask).await;
    assert_eq!(
        other["reply"], "From the model.",
        "another user has their own allowance"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "copilot_rate_limited_total{limit=\"llm\"} "),
        1.0
    );
}

#[tokio::test]
async fn made_up_intent_commands_create_no_metric_series() {
    let app = spawn_app_with(|s| s.chat.max_messages_per_minute = 1000).await;
    for i in 0..200 {
        let response = app
            .client
            .post(app.url("/webhooks/rest/webhook"))
            .json(&json!({"sender": format!("s{i}"), "message": format!("/zz{i}x{{\"a\":1}}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let metrics = app.metrics().await;
    assert!(!metrics.contains("zz1x"), "no series per made-up intent");
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("copilot_chat_turns_total{"))
        .count();
    assert_eq!(series, 1, "all 200 counted under one intent: {metrics}");
    assert_eq!(
        metric(
            &metrics,
            "copilot_chat_turns_total{intent=\"nlu_fallback\"} "
        ),
        200.0
    );
}

async fn parse(app: &crate::helpers::TestApp, text: &str) -> Value {
    let body = json!({ "text": text });
    let response = app
        .send_json(reqwest::Method::POST, "/model/parse", None, &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn made_up_intent_commands_are_not_taken_as_intents() {
    let app = spawn_app().await;
    let parsed = parse(&app, "/zzqx_not_an_intent").await;
    assert_ne!(
        parsed["intent"]["name"], "zzqx_not_an_intent",
        "an unknown command is not taken as an intent name"
    );
    assert_ne!(parsed["intent"]["confidence"], 1.0);
    let known = parse(&app, "/greet").await;
    assert_eq!(known["intent"]["name"], "greet");
}

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_llm::{Behaviour, FakeLlm, system_text, user_text};
use crate::helpers::{fixture, spawn_app_with_llm};
use crate::socket_client::{SocketClient, texts};

/// A product question no intent covers: it goes to the LLM.
const OFF_TOPIC: &str = "how do I rename a project?";

#[tokio::test]
async fn the_llm_gets_name_activity_and_history_and_its_answer_reaches_the_socket() {
    let fake = FakeLlm::start(Behaviour::Answer(
        "Use the priority field, then save.".into(),
    ))
    .await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;

    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("llm-1")).await;
    socket.say("llm-1", "user_42", "hello").await;
    socket.replies().await;
    socket.say("llm-1", "user_42", OFF_TOPIC).await;
    let text = texts(&socket.replies().await);
    assert_eq!(text, "Use the priority field, then save.");

    let requests = fake.chat_requests();
    assert_eq!(requests.len(), 1, "one call for the fallback turn");
    let request = &requests[0];
    assert_eq!(request["model"], "gpt-4o-mini");
    assert!((request["temperature"].as_f64().unwrap() - 0.4).abs() < 1e-6);
    assert_eq!(request["max_tokens"], 250);
    let system = system_text(request);
    assert!(system.contains("User's first name: Casey."), "{system}");
    assert!(
        system.contains("Pick up") || system.contains("Continue from that point"),
        "our prompt: {system}"
    );
    let user = user_text(request);
    assert!(user.starts_with("[RECENT PRODUCT ACTIVITY]\n"), "{user}");
    assert!(
        user.contains("click: Clicked 'Save changes' button on /projects/:id"),
        "{user}"
    );
    assert!(
        user.contains("Prior conversation:\nuser: hello\nassistant: "),
        "{user}"
    );
    assert!(
        user.ends_with(&format!("[CURRENT USER MESSAGE]\n{OFF_TOPIC}")),
        "{user}"
    );
}

#[tokio::test]
async fn a_failing_slow_or_garbled_llm_gets_a_polite_grounded_reply_in_time() {
    let cases = [
        (Behaviour::ServerError, "500"),
        (Behaviour::Slow(Duration::from_secs(5)), "timeout"),
        (Behaviour::Garbage, "invalid JSON"),
        (Behaviour::Answer("   ".into()), "empty completion"),
    ];
    for (behaviour, why) in cases {
        let fake = FakeLlm::start(behaviour).await;
        let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 300).await;
        app.deliver(fixture("posthog-webhook-autocapture.json"))
            .await;
        let started = Instant::now();
        let reply = app.reply_json("user_42", OFF_TOPIC).await;
        let took = started.elapsed();
        let text = reply["reply"].as_str().unwrap();
        assert!(text.starts_with("Sorry"), "{why}: {text}");
        assert!(
            text.contains("'Save changes'"),
            "{why}: still grounded: {text}"
        );
        assert!(took < Duration::from_secs(3), "{why}: took {took:?}");
        assert_eq!(fake.chat_requests().len(), 2, "{why}: one retry");
    }
}

#[tokio::test]
async fn rolling_summaries_come_from_the_llm_at_low_temperature() {
    let fake = FakeLlm::start(Behaviour::Answer("The user edited three projects.".into())).await;
    let app = spawn_app_with_llm(&fake, |s| s.context.summary_threshold = 3).await;
    let batch: Vec<_> = (0..3)
        .map(|i| {
            crate::helpers::click_event(
                &format!("e{i}"),
                "u",
                "s",
                &format!("Row {i}"),
                "https://x.io/p",
            )
        })
        .collect();
    app.deliver_json(&json!(batch)).await;
    let context = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let context = app.context("u").await;
            if context["context"].as_str().unwrap().starts_with("Summary:") {
                return context;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("summary stored");
    assert!(
        context["context"]
            .as_str()
            .unwrap()
            .contains("The user edited three projects.")
    );
    let summary_call = fake
        .requests()
        .into_iter()
        .find(|r| user_text(r).contains("New actions:"))
        .unwrap();
    assert!((summary_call["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
    assert!(user_text(&summary_call).contains("Row 2"));
}

#[tokio::test]
async fn a_failing_summariser_keeps_the_raw_actions() {
    let fake = FakeLlm::start(Behaviour::ServerError).await;
    let app = spawn_app_with_llm(&fake, |s| {
        s.context.summary_threshold = 2;
        s.llm.retries = 0;
    })
    .await;
    app.deliver_json(&json!([
        crate::helpers::click_event("a", "u", "s", "First", "https://x.io/p"),
        crate::helpers::click_event("b", "u", "s", "Second", "https://x.io/p"),
    ]))
    .await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while fake.requests().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the summariser was called");
    let text = app.context("u").await["context"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("'First'") && text.contains("'Second'"),
        "{text}"
    );
    assert!(!text.contains("Summary:"), "{text}");
}

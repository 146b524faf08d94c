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
    assert!(
        text.starts_with("Use the priority field, then save.\nSources: ["),
        "the answer, then the help pages it was given: {text}"
    );

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
    // Timeouts and 5xx are retried once; an answer that is bad would come
    // back the same, so it is not.
    let cases = [
        (Behaviour::ServerError, "500", 2),
        (Behaviour::Slow(Duration::from_secs(5)), "timeout", 2),
        (Behaviour::Garbage, "invalid JSON", 1),
        (Behaviour::Answer("   ".into()), "empty completion", 1),
    ];
    for (behaviour, why, calls) in cases {
        let fake = FakeLlm::start(behaviour).await;
        let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 300).await;
        app.deliver(fixture("posthog-webhook-autocapture.json"))
            .await;
        let started = Instant::now();
        let reply = app.reply_json("user_42", OFF_TOPIC).await;
        let took = started.elapsed();
        let text = reply["reply"].as_str().unwrap();
        assert!(text.starts_with("Sorry"), "{why}: {text}");
        // Grounded in the product's help page for the question, as offline.
        assert!(
            text.contains("From the help pages, **Edit a project"),
            "{why}: still grounded: {text}"
        );
        assert!(took < Duration::from_secs(3), "{why}: took {took:?}");
        assert_eq!(fake.chat_requests().len(), calls, "{why}");
    }
}

#[tokio::test]
async fn an_llm_slower_than_the_http_timeout_still_gets_the_polite_reply_first() {
    // Two 1.5 s attempts would outlast the 3 s request timeout; the turn's
    // 2 s deadline cuts the second one short.
    let fake = FakeLlm::start(Behaviour::Slow(Duration::from_secs(30))).await;
    let app = spawn_app_with_llm(&fake, |s| {
        s.server.request_timeout_ms = 3_000;
        s.llm.timeout_ms = 1_500;
        s.llm.turn_deadline_ms = 2_000;
        s.llm.retries = 1;
    })
    .await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let response = app.reply("user_42", OFF_TOPIC).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "not a bare 408");
    let reply: serde_json::Value = response.json().await.unwrap();
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.starts_with("Sorry") && text.contains("From the help pages, **Edit a project"),
        "{text}"
    );
    assert!(fake.chat_requests().len() <= 2);
}

#[tokio::test]
async fn a_429_is_retried_after_the_servers_retry_after() {
    let fake = FakeLlm::start(Behaviour::RateLimited).await;
    let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 500).await;
    let started = Instant::now();
    let reply = app.reply_json("user_42", OFF_TOPIC).await;
    assert!(reply["reply"].as_str().unwrap().starts_with("Sorry"));
    assert_eq!(fake.chat_requests().len(), 2, "one retry");
    // The fake says `Retry-After: 1`; our own backoff would be 100-300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn settings_whose_llm_deadline_outlasts_the_http_timeout_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.toml");
    std::fs::write(&path, "[llm]\nturn_deadline_ms = 15000\n").unwrap();
    let error = copilot_server::config::Settings::load_with_env(Some(&path), |_| None)
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("llm.turn_deadline_ms") && message.contains("request_timeout_ms"),
        "{message}"
    );
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

/// The tutorial's headline questions, none of them an intent we answer with
/// canned text: with an LLM they reach it with the activity.
const OUT_OF_SCOPE: [&str; 3] = [
    "how do I change a project's priority?",
    "is there a dark mode?",
    "can I undo a change?",
];

#[tokio::test]
async fn out_of_scope_questions_reach_the_llm_with_the_activity() {
    let fake = FakeLlm::start(Behaviour::Answer(
        "Open the project and pick a priority.".into(),
    ))
    .await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    for (i, question) in OUT_OF_SCOPE.iter().enumerate() {
        let reply = app.reply_json("user_42", question).await;
        let text = reply["reply"].as_str().unwrap();
        assert!(
            text.starts_with("Open the project and pick a priority."),
            "{question}: {text}"
        );
        let requests = fake.chat_requests();
        assert_eq!(requests.len(), i + 1, "{question} went to the LLM");
        let user = user_text(&requests[i]);
        assert!(user.contains("Clicked 'Save changes'"), "{user}");
        assert!(user.ends_with(question), "{user}");
    }
}

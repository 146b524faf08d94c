use std::time::Duration;

use serde_json::json;

use crate::helpers::{API_KEY, click_event, spawn_app_with};

#[tokio::test]
async fn only_the_newest_max_actions_are_shown() {
    let app = spawn_app_with(|s| {
        s.context.max_actions = 3;
        s.context.summary_threshold = 100;
    })
    .await;
    let batch: Vec<_> = (0..5)
        .map(|i| {
            click_event(
                &format!("e{i}"),
                "u",
                "s",
                &format!("Button {i}"),
                "https://x.io/p",
            )
        })
        .collect();
    assert_eq!(app.deliver_json(&json!(batch)).await["accepted"], 5);
    let text = app.context("u").await["context"]
        .as_str()
        .unwrap()
        .to_owned();
    for shown in ["Button 2", "Button 3", "Button 4"] {
        assert!(text.contains(shown), "{shown} in {text}");
    }
    for gone in ["Button 0", "Button 1"] {
        assert!(!text.contains(gone), "{gone} should be trimmed: {text}");
    }
}

#[tokio::test]
async fn actions_older_than_the_lookback_window_are_not_read() {
    let app = spawn_app_with(|s| s.context.lookback_seconds = 0.3).await;
    app.deliver_json(&click_event("e1", "u", "s", "Export", "https://x.io/r"))
        .await;
    assert_eq!(app.context("u").await["has_activity"], true);
    // Waiting out a window is the behaviour under test, not a race: after 0.5 s an
    // action received 0.5 s ago is outside a 0.3 s window whatever the scheduling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let context = app.context("u").await;
    assert_eq!(context["has_activity"], false, "{context}");
    assert_eq!(
        app.reply_json("u", "what did I just do").await["has_activity"],
        false
    );
}

#[tokio::test]
async fn the_summary_replaces_old_actions_and_readers_never_see_an_empty_context() {
    let app = spawn_app_with(|s| s.context.summary_threshold = 3).await;
    app.deliver_json(&click_event("first", "u", "s", "Start", "https://x.io/p"))
        .await;

    // Readers poll while events stream in and summaries swap in and out.
    let mut readers = Vec::new();
    for _ in 0..4 {
        let client = app.client.clone();
        let url = app.url("/context/u");
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            for _ in 0..150 {
                let body: serde_json::Value = client
                    .get(&url)
                    .bearer_auth(API_KEY)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(
                    body["has_activity"], true,
                    "a reader saw no activity: {body}"
                );
                assert!(!body["context"].as_str().unwrap().is_empty());
                reads += 1;
            }
            reads
        }));
    }
    for i in 0..40 {
        app.deliver_json(&click_event(
            &format!("e{i}"),
            "u",
            "s",
            &format!("Row {i}"),
            "https://x.io/p",
        ))
        .await;
    }
    for reader in readers {
        let reads = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("reader finished in time")
            .expect("reader assertions held");
        assert_eq!(reads, 150);
    }
    let text = app.context("u").await["context"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with("Summary: "), "{text}");
    assert!(
        !text.contains("'Row 0'"),
        "covered raw actions are gone once summarised: {text}"
    );
}

//! Answers streamed as they are written: Socket.IO `bot_stream` for clients
//! that ask (`customData.stream`), the REST channel's and `/reply`'s opt-in
//! server-sent events, one final message for everyone, and a client that
//! leaves mid-answer stopping the LLM call.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{eventually, fixture, metric, spawn_app, spawn_app_with_llm};
use crate::socket_client::SocketClient;

/// A question no intent takes: it goes to the LLM.
const QUESTION: &str = "how do I change a project's priority?";
const DEMO_KEY: &str = "demo-api-key-change-me";

fn chunks() -> Vec<String> {
    [
        "Open the project, ",
        "pick a priority ",
        "in the dialog, ",
        "then click 'Save changes'.",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn streaming_llm(every_ms: u64) -> Behaviour {
    Behaviour::Stream {
        chunks: chunks(),
        every: Duration::from_millis(every_ms),
    }
}

/// A socket in session `session` that has asked `text`, wanting the answer live.
async fn streaming_socket(address: &str, session: &str, text: &str) -> SocketClient {
    let mut socket = SocketClient::connect(address, None).await.unwrap();
    socket.start_session(Some(session)).await;
    socket
        .say_with(session, json!({"userId": "user_42", "stream": true}), text)
        .await;
    socket
}

/// Every event until the first `bot_uttered` after a `complete` step, then
/// any further `bot_uttered` within a short while.
async fn live_turn_events(socket: &mut SocketClient) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut completed = false;
    loop {
        let wait = if completed && events.iter().any(|(n, _)| n == "bot_uttered") {
            Duration::from_millis(400)
        } else {
            Duration::from_secs(10)
        };
        let Some((name, value)) = socket.next_event(wait).await else {
            break;
        };
        if name == "bot_stream" && value["status"] == "complete" {
            completed = true;
        }
        events.push((name, value));
    }
    assert!(completed, "the turn completed: {events:#?}");
    events
}

/// The statuses in order, with `replying` steps collapsed into one.
fn statuses(events: &[(String, Value)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, value) in events {
        let step = match name.as_str() {
            "bot_stream" => value["status"].as_str().unwrap().to_owned(),
            other => other.to_owned(),
        };
        if out.last() != Some(&step) || step != "replying" {
            out.push(step);
        }
    }
    out
}

#[tokio::test]
async fn a_streaming_socket_sees_thinking_then_the_growing_text_then_one_whole_message() {
    let fake = FakeLlm::start(streaming_llm(150)).await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let mut socket = streaming_socket(&app.address, "stream-1", QUESTION).await;
    let events = live_turn_events(&mut socket).await;

    assert_eq!(
        statuses(&events),
        ["thinking", "replying", "complete", "bot_uttered"],
        "{events:#?}"
    );
    let steps: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "bot_stream")
        .map(|(_, v)| v)
        .collect();
    let id = steps[0]["message_id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(
        steps.iter().all(|s| s["message_id"] == id),
        "one id: {steps:#?}"
    );
    assert_eq!(steps[0]["text"], "", "thinking has no text yet");
    let drafts: Vec<&str> = steps
        .iter()
        .filter(|s| s["status"] == "replying")
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert!(drafts.len() >= 2, "the text arrives in steps: {drafts:?}");
    for pair in drafts.windows(2) {
        assert!(
            pair[1].starts_with(pair[0]) && pair[1].len() > pair[0].len(),
            "each step is the whole text so far, growing: {drafts:?}"
        );
    }
    let whole = chunks().concat();
    let complete = steps.last().unwrap()["text"].as_str().unwrap();
    assert!(complete.starts_with(&whole), "{complete}");
    assert!(
        complete.contains("Source: [") || complete.contains("Sources: ["),
        "the help pages it was given are cited: {complete}"
    );

    let finals: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "bot_uttered")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        finals.len(),
        1,
        "one message, not one per part: {finals:#?}"
    );
    assert_eq!(
        finals[0]["text"], complete,
        "the final message is the whole text"
    );
    assert_eq!(finals[0]["metadata"]["message_id"], id);
    let request = &fake.chat_requests()[0];
    assert_eq!(request["stream"], true, "the LLM was asked to stream");
}

#[tokio::test]
async fn a_client_that_does_not_ask_gets_what_rasa_sends_and_no_stream_events() {
    let fake = FakeLlm::start(streaming_llm(50)).await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("plain-1")).await;
    socket.say("plain-1", "user_42", QUESTION).await;
    let mut events = Vec::new();
    while let Some(event) = socket.next_event(Duration::from_secs(3)).await {
        events.push(event);
    }
    assert!(
        events.iter().all(|(name, _)| name == "bot_uttered"),
        "rasa-webchat and the like see only bot_uttered: {events:#?}"
    );
    let first = &events[0].1;
    assert_eq!(
        first["text"],
        chunks().concat(),
        "the answer, split on blank lines as Rasa does (the sources come next)"
    );
    assert!(first.get("metadata").is_none(), "{first}");
    assert_ne!(
        fake.chat_requests()[0]["stream"],
        true,
        "a plain completion"
    );
}

#[tokio::test]
async fn a_socket_that_disconnects_mid_answer_stops_the_llm_call() {
    let fake = FakeLlm::start(streaming_llm(700)).await;
    let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 3_000).await;
    let mut socket = streaming_socket(&app.address, "leave-1", QUESTION).await;
    // Leave once the first words are on screen.
    loop {
        let (name, value) = socket
            .next_event(Duration::from_secs(10))
            .await
            .expect("the answer starts");
        if name == "bot_stream" && value["status"] == "replying" {
            break;
        }
    }
    socket.disconnect().await;
    let cut = eventually(Duration::from_secs(5), || async {
        (fake.cancelled() == 1).then_some(())
    })
    .await;
    assert!(cut.is_some(), "the LLM's stream was cut off by us");
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "copilot_llm_calls_total{outcome=\"cancelled\"} "),
        1.0,
        "{metrics}"
    );

    // The conversation goes on from where it was.
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("leave-1")).await;
    socket.say("leave-1", "user_42", "hi").await;
    assert!(!socket.replies().await.is_empty());
}

/// `(event, data)` pairs of a finished server-sent event stream.
async fn sse_events(response: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let body = tokio::time::timeout(Duration::from_secs(15), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let mut out = Vec::new();
    for block in body.split("\n\n") {
        let mut name = "message".to_owned();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        if !data.is_empty() {
            out.push((name, serde_json::from_str(&data).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn the_rest_channel_streams_when_asked_and_answers_json_otherwise() {
    let fake = FakeLlm::start(streaming_llm(100)).await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    let client = reqwest::Client::new();
    let body = json!({"sender": "rest-stream", "message": QUESTION});
    let response = client
        .post(app.url("/webhooks/rest/webhook"))
        .header("accept", "text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = sse_events(response).await;
    assert_eq!(
        statuses(&events),
        ["thinking", "replying", "complete", "bot_uttered"],
        "{events:#?}"
    );
    let id = events[0].1["message_id"].clone();
    let (_, last) = events.last().unwrap();
    assert_eq!(last["recipient_id"], "rest-stream");
    assert_eq!(last["metadata"]["message_id"], id);
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .starts_with(&chunks().concat())
    );

    // Without the header: Rasa's JSON array, as before.
    let items: Vec<Value> = client
        .post(app.url("/webhooks/rest/webhook"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items[0]["text"], chunks().concat());
    assert_eq!(items[0]["recipient_id"], "rest-stream");
}

#[tokio::test]
async fn reply_streams_with_stream_true_and_ends_with_the_usual_body() {
    let fake = FakeLlm::start(streaming_llm(100)).await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let response = reqwest::Client::new()
        .get(app.url("/reply/user_42"))
        .query(&[("query", QUESTION), ("stream", "true")])
        .bearer_auth(DEMO_KEY)
        .send()
        .await
        .unwrap();
    let events = sse_events(response).await;
    assert_eq!(
        statuses(&events),
        ["thinking", "replying", "complete", "reply"],
        "{events:#?}"
    );
    let (_, reply) = events.last().unwrap();
    assert!(
        reply["reply"]
            .as_str()
            .unwrap()
            .starts_with(&chunks().concat())
    );
    assert_eq!(reply["has_activity"], true);
    assert_eq!(reply["name"], "Casey Jones");

    // The same key rule as without streaming.
    let refused = reqwest::Client::new()
        .get(app.url("/reply/user_42"))
        .query(&[("query", QUESTION), ("stream", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn offline_the_grounded_answer_is_the_drafted_message_and_a_canned_one_is_not() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .get(app.url("/reply/user_42"))
        .query(&[("query", "how do I archive a project?"), ("stream", "true")])
        .bearer_auth(DEMO_KEY)
        .send()
        .await
        .unwrap();
    let events = sse_events(response).await;
    let steps = statuses(&events);
    assert!(
        steps == ["thinking", "complete", "reply"]
            || steps == ["thinking", "replying", "complete", "reply"],
        "{events:#?}"
    );
    let (_, reply) = events.last().unwrap();
    let reply = reply["reply"].as_str().unwrap();
    assert!(
        reply.contains("Archive"),
        "answered from the help pages: {reply}"
    );
    let (_, complete) = &events[events.len() - 2];
    assert_eq!(complete["text"], reply, "the whole answer, in one message");

    // A canned response is not a draft: complete says nothing.
    let mut socket = streaming_socket(&app.address, "canned-1", "hello").await;
    let events = live_turn_events(&mut socket).await;
    assert_eq!(
        statuses(&events),
        ["thinking", "complete", "bot_uttered"],
        "{events:#?}"
    );
    assert_eq!(events[1].1["text"], "");
    assert!(events[2].1.get("metadata").is_none(), "{events:#?}");
}

#[tokio::test]
async fn accepting_the_bulk_edit_offer_points_at_the_button() {
    let app = spawn_app().await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("show-1")).await;
    socket.say("show-1", "user_42", "/ask_bulk_edit").await;
    let replies = socket.replies().await;
    let highlight = &replies.last().unwrap()["metadata"]["domHighlight"];
    assert_eq!(highlight["selector"], "#bulk-edit-button", "{replies:#?}");
    assert!(highlight["tooltip"].as_str().is_some_and(|t| !t.is_empty()));
}

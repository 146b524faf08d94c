//! A stock Rasa 3 project (tests/fixtures/rasa-project: the mood bot plus a
//! form and a custom action) loaded as it is, talked to over REST and
//! Socket.IO, with its custom action run by a real rasa-sdk action server.
//! The expected replies are what Rasa 3.6.21 answered to the same messages
//! (tests/fixtures/rasa-project/conversations.yml, recorded by
//! tools/rasa-reference/record_conversations.py).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::socket_client::SocketClient;

#[derive(Deserialize)]
struct Recording {
    conversations: Vec<Conversation>,
}

#[derive(Deserialize)]
struct Conversation {
    name: String,
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    user: String,
    #[serde(default)]
    events: Vec<Value>,
    bot: Vec<Value>,
}

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rasa-project")
}

fn recording() -> Recording {
    let text = std::fs::read_to_string(fixture_dir().join("conversations.yml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn uses_custom_action(conversation: &Conversation) -> bool {
    conversation
        .turns
        .iter()
        .flat_map(|t| &t.events)
        .any(|e| e["name"] == "action_submit_feedback")
}

/// A rasa-sdk action server serving tests/python/actions on a free port;
/// stopped when dropped.
pub struct ActionServer {
    pub url: String,
    _child: tokio::process::Child,
}

/// The Python of a virtualenv with rasa-sdk, if there is one. CI sets
/// `COPILOT_PYTHON` (and `COPILOT_REQUIRE_PYTHON`, so a missing one fails).
fn python_with_rasa_sdk() -> Option<String> {
    crate::helpers::python_or_skip("rasa_sdk")
}

impl ActionServer {
    pub async fn start() -> Option<Self> {
        let python = python_with_rasa_sdk()?;
        let port = crate::services::free_port();
        let child = tokio::process::Command::new(python)
            .args([
                "-m",
                "rasa_sdk",
                "--actions",
                "actions",
                "--port",
                &port.to_string(),
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the action server starts");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let up = crate::helpers::eventually(Duration::from_secs(60), || {
            let request = client.get(format!("{base}/health")).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        assert!(
            up.is_some(),
            "the rasa-sdk action server did not come up on {base}"
        );
        Some(Self {
            url: format!("{base}/webhook"),
            _child: child,
        })
    }
}

async fn fixture_app(action_endpoint: Option<&str>) -> TestApp {
    let endpoint = action_endpoint.unwrap_or_default().to_owned();
    spawn_app_with(move |s| {
        s.nlu.intents_dir = fixture_dir();
        // No action server: a closed port, so the custom action fails politely.
        s.nlu.action_endpoint = if endpoint.is_empty() {
            "http://127.0.0.1:9/webhook".to_owned()
        } else {
            endpoint
        };
    })
    .await
}

async fn rest_turn(app: &TestApp, sender: &str, message: &str) -> Vec<Value> {
    let body = json!({ "sender": sender, "message": message });
    let response = app
        .send_json(Method::POST, "/webhooks/rest/webhook", None, &body)
        .await;
    let items: Vec<Value> = response.json().await.unwrap();
    items
        .into_iter()
        .map(|mut item| {
            if let Some(map) = item.as_object_mut() {
                map.remove("recipient_id");
            }
            item
        })
        .collect()
}

#[tokio::test]
async fn conversations_over_rest_get_the_replies_rasa_gave() {
    let server = ActionServer::start().await;
    let app = fixture_app(server.as_ref().map(|s| s.url.as_str())).await;
    let mut ran = 0;
    let conversations = recording().conversations;
    for (i, conversation) in conversations.iter().enumerate() {
        if server.is_none() && uses_custom_action(conversation) {
            continue;
        }
        let sender = format!("rest-{i}");
        for (t, turn) in conversation.turns.iter().enumerate() {
            let got = rest_turn(&app, &sender, &turn.user).await;
            assert_eq!(
                got, turn.bot,
                "{:?}, turn {t} ({:?}): Rasa said {:?}, we said {:?}",
                conversation.name, turn.user, turn.bot, got
            );
        }
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} conversations ran");
    if server.is_some() {
        assert_eq!(ran, conversations.len());
    }
}

#[tokio::test]
async fn the_form_and_its_custom_action_work_over_socketio() {
    let Some(server) = ActionServer::start().await else {
        return;
    };
    let app = fixture_app(Some(&server.url)).await;
    let mut client = SocketClient::connect(&app.address, None).await.unwrap();
    let session = client.start_session(Some("form-socket")).await;
    let session = session.as_str().unwrap().to_owned();
    let mut say = async |text: &str| {
        client
            .emit(
                "user_uttered",
                json!({ "message": text, "session_id": session }),
            )
            .await;
        crate::socket_client::texts(&client.replies().await)
    };
    assert_eq!(
        say("I want to give feedback").await,
        "Happy to hear your feedback! What's your name?"
    );
    assert_eq!(
        say("Dana").await,
        "Thanks Dana! How would you rate us from 1 to 5?"
    );
    assert_eq!(say("a solid four").await, "Thanks Dana, you rated us 4.");
    assert_eq!(
        say("bye").await,
        "Bye Dana, and thanks again for the feedback!"
    );
}

#[tokio::test]
async fn a_failing_or_hanging_action_server_gets_a_polite_reply() {
    // Closed port: the action cannot be reached.
    let app = fixture_app(None).await;
    for text in ["/give_feedback", "Erin"] {
        rest_turn(&app, "broken", text).await;
    }
    let got = rest_turn(&app, "broken", "5").await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Sorry — something went wrong"),
        "{got:?}"
    );

    // A server that accepts and never answers: the action times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = spawn_app_with(move |s| {
        s.nlu.intents_dir = fixture_dir();
        s.nlu.action_endpoint = hang;
        s.nlu.action_timeout_ms = 300;
    })
    .await;
    for text in ["/give_feedback", "Erin"] {
        rest_turn(&app, "hung", text).await;
    }
    let started = std::time::Instant::now();
    let got = rest_turn(&app, "hung", "5").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Sorry — something went wrong"),
        "{got:?}"
    );
}

#[derive(Deserialize)]
struct Parses {
    parses: Vec<Parse>,
}

#[derive(Deserialize)]
struct Parse {
    text: String,
    intent: String,
    entities: Vec<Value>,
}

#[tokio::test]
async fn model_parse_finds_the_entities_rasa_found() {
    let app = fixture_app(None).await;
    let text = std::fs::read_to_string(fixture_dir().join("parse.yml")).unwrap();
    let parses: Parses = serde_yaml_ng::from_str(&text).unwrap();
    for parse in parses.parses {
        let request = json!({ "text": parse.text });
        let response = app
            .send_json(Method::POST, "/model/parse", None, &request)
            .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["intent"]["name"], parse.intent, "{}", parse.text);
        // Extractor names and confidences are ours; what was found is Rasa's.
        let fields = |e: &Value| {
            (
                e["entity"].clone(),
                e["start"].clone(),
                e["end"].clone(),
                e["value"].clone(),
            )
        };
        let ours: Vec<_> = body["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(fields)
            .collect();
        let rasa: Vec<_> = parse.entities.iter().map(fields).collect();
        assert_eq!(ours, rasa, "{}", parse.text);
        for entity in body["entities"].as_array().unwrap() {
            assert_eq!(
                entity["processors"],
                json!(["EntitySynonymMapper"]),
                "{}",
                parse.text
            );
        }
    }
}

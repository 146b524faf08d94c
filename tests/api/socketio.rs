use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{fixture, spawn_app, spawn_app_with};
use crate::socket_client::{SocketClient, texts};

#[tokio::test]
async fn session_confirm_echoes_the_id_as_a_bare_string_or_makes_one() {
    let app = spawn_app().await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    assert_eq!(socket.start_session(Some("abc123")).await, json!("abc123"));
    for request in [json!({"session_id": null}), json!({}), Value::Null] {
        socket.emit("session_request", request.clone()).await;
        let id = socket.next("session_confirm").await;
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("bare string for {request}"));
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    socket.disconnect().await;
}

#[tokio::test]
async fn greet_gets_a_response_with_quick_replies_rasa_webchat_renders() {
    let app = spawn_app().await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("s-greet")).await;
    socket.say("s-greet", "user_42", "hello").await;
    let replies = socket.replies().await;
    let last = replies.last().unwrap();
    let keys: Vec<&String> = last.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["quick_replies", "text"], "exact key set: {last}");
    assert!(
        last["text"].as_str().unwrap().contains("Casey"),
        "{{name}} filled: {last}"
    );
    let titles: Vec<&str> = last["quick_replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["What did I just do?", "Help with this page"]);
    assert_eq!(
        last["quick_replies"][0]["payload"],
        "/ask_what_just_happened"
    );
    assert_eq!(last["quick_replies"][0]["content_type"], "text");
}

#[tokio::test]
async fn what_did_i_just_do_is_grounded_in_the_users_webhook_events() {
    let app = spawn_app().await;
    app.deliver(fixture("batch.json")).await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("s-recap")).await;
    socket
        .say("s-recap", "user_42", "what did I just do?")
        .await;
    let text = texts(&socket.replies().await);
    assert!(text.contains("'Save changes'"), "{text}");
    assert!(text.contains("/projects/:id"), "{text}");

    // A quick-reply payload runs the same rule.
    socket
        .say("s-recap", "user_42", "/ask_what_just_happened")
        .await;
    let text = texts(&socket.replies().await);
    assert!(text.contains("'Save changes'"), "{text}");
}

#[tokio::test]
async fn two_tabs_of_one_session_both_receive_the_reply() {
    let app = spawn_app().await;
    let auth = || Some(json!({ "userId": "u1" }));
    let mut tab1 = SocketClient::connect(&app.address, auth()).await.unwrap();
    let mut tab2 = SocketClient::connect(&app.address, auth()).await.unwrap();
    let mut other = SocketClient::connect(&app.address, auth()).await.unwrap();
    let mut stranger = SocketClient::connect(&app.address, None).await.unwrap();
    tab1.start_session(Some("shared")).await;
    tab2.start_session(Some("shared")).await;
    other.start_session(Some("elsewhere")).await;
    stranger.start_session(Some("shared")).await;
    tab1.say("shared", "u1", "are you a bot?").await;
    let one = tab1.replies().await;
    let two = tab2.replies().await;
    assert_eq!(one, two, "both tabs get the same messages");
    for (socket, what) in [
        (&mut other, "a socket of another session"),
        (
            &mut stranger,
            "a socket of another visitor that names the same session id",
        ),
    ] {
        assert!(
            socket
                .try_next("bot_uttered", Duration::from_millis(500))
                .await
                .is_none(),
            "{what} gets nothing"
        );
    }
}

#[tokio::test]
async fn another_users_activity_never_appears_in_a_chat() {
    let app = spawn_app().await;
    app.deliver_json(&crate::helpers::click_event(
        "a1",
        "alice",
        "sa",
        "Delete workspace",
        "https://x.io/settings",
    ))
    .await;
    app.deliver_json(&crate::helpers::click_event(
        "b1",
        "bob",
        "sb",
        "Invite member",
        "https://x.io/team",
    ))
    .await;
    let mut bob = SocketClient::connect(&app.address, None).await.unwrap();
    bob.start_session(Some("bob-chat")).await;
    bob.say("bob-chat", "bob", "what did I just do?").await;
    let text = texts(&bob.replies().await);
    assert!(text.contains("Invite member"), "{text}");
    assert!(!text.contains("Delete workspace"), "{text}");
}

#[tokio::test]
async fn a_message_without_session_id_is_ignored_without_harm() {
    let app = spawn_app().await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("s1")).await;
    socket
        .emit(
            "user_uttered",
            json!({"message": "hello", "customData": {"userId": "u"}}),
        )
        .await;
    socket.emit("user_uttered", json!("not an object")).await;
    assert!(
        socket
            .try_next("bot_uttered", Duration::from_millis(500))
            .await
            .is_none()
    );
    // The socket and server are still fine.
    socket.say("s1", "u", "hello").await;
    assert!(!socket.replies().await.is_empty());
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
}

#[tokio::test]
async fn event_names_and_persistence_follow_the_settings() {
    let app = spawn_app_with(|s| {
        s.socketio.user_message_evt = "user_said".to_owned();
        s.socketio.bot_message_evt = "bot_said".to_owned();
        s.socketio.session_persistence = false;
    })
    .await;
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(None).await;
    // Without persistence the sender is the socket: no session id needed.
    socket
        .emit(
            "user_said",
            json!({"message": "hi", "customData": {"userId": "u"}}),
        )
        .await;
    let reply = socket.next("bot_said").await;
    assert!(reply["text"].is_string(), "{reply}");
}

fn jwt(secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "u1"}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn with_a_jwt_secret_only_signed_clients_may_connect() {
    let app = spawn_app_with(|s| s.socketio.jwt_secret = "jwt-test-secret".to_owned()).await;

    let mut good = SocketClient::connect(
        &app.address,
        Some(json!({"token": format!("Bearer {}", jwt("jwt-test-secret"))})),
    )
    .await
    .unwrap();
    assert_eq!(good.start_session(Some("ok")).await, json!("ok"));

    for auth in [
        None,
        Some(json!({"token": jwt("wrong-secret")})),
        Some(json!({"token": "garbage"})),
    ] {
        let refused = SocketClient::connect(&app.address, auth.clone()).await;
        let error = refused
            .err()
            .unwrap_or_else(|| panic!("{auth:?} should be refused"));
        assert!(error.contains("token"), "{auth:?}: {error}");
    }
}

#[tokio::test]
async fn polling_from_another_origin_gets_the_origin_mirrored_with_credentials() {
    let app = spawn_app().await;
    for eio in ["3", "4"] {
        let response = app
            .client
            .get(app.url(&format!("/socket.io/?EIO={eio}&transport=polling")))
            .header("Origin", "https://customer-app.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "EIO={eio}");
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://customer-app.example"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
    }
}

/// socket.io-client and rasa-webchat emit `session_request` from their
/// `connect` callback, the moment the CONNECT ack arrives. The event handlers
/// must already be in place then. Many raw websocket clients do exactly that
/// at once, so the server is busy while acks go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_request_sent_the_moment_connect_is_acked_is_answered() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app().await;
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        app.address.replace("http://", "ws://")
    );
    let clients = (0..1000).map(|i| {
        let ws_url = ws_url.clone();
        tokio::spawn(async move {
            let (mut ws, _) = match tokio_tungstenite::connect_async(&ws_url).await {
                Ok(ws) => ws,
                Err(e) => return Err(format!("connect: {e}")),
            };
            let confirm = format!("42[\"session_confirm\",\"early-{i}\"]");
            let outcome = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    if text.starts_with('0') {
                        ws.send(Message::Text("40".into())).await.unwrap();
                    } else if text.starts_with("40") {
                        let request =
                            format!("42[\"session_request\",{{\"session_id\":\"early-{i}\"}}]");
                        ws.send(Message::Text(request)).await.unwrap();
                    } else if text.as_str() == "2" {
                        ws.send(Message::Text("3".into())).await.unwrap();
                    } else if text.as_str() == confirm {
                        return Ok(());
                    }
                }
                Err("closed without a confirm".to_owned())
            })
            .await;
            outcome.unwrap_or_else(|_| Err("no confirm within 10 s".to_owned()))
        })
    });
    let mut failures = Vec::new();
    for client in clients.collect::<Vec<_>>() {
        if let Err(why) = client.await.unwrap() {
            failures.push(why);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 1000 failed: {failures:?}",
        failures.len()
    );
}

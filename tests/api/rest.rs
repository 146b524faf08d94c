use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{fixture, spawn_app};

#[tokio::test]
async fn the_rest_webhook_parses_json_whatever_the_content_type() {
    let app = spawn_app().await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let response = app
        .client
        .post(app.url("/webhooks/rest/webhook"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"{"sender":"chat-1","message":"what did I just do?","metadata":{"userId":"user_42"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let items: Vec<Value> = response.json().await.unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|i| i["recipient_id"] == "chat-1"));
    assert!(
        items[0]["text"]
            .as_str()
            .unwrap()
            .contains("'Save changes'"),
        "{items:?}"
    );
}

#[tokio::test]
async fn a_missing_sender_is_default_and_buttons_come_back_as_buttons() {
    let app = spawn_app().await;
    let items: Vec<Value> = app
        .client
        .post(app.url("/webhooks/rest/webhook"))
        .body(r#"{"message":"/greet"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = items.last().unwrap();
    assert_eq!(last["recipient_id"], "default");
    assert_eq!(
        last["buttons"][0],
        json!({"title": "What did I just do?", "payload": "/ask_what_just_happened"})
    );
}

#[tokio::test]
async fn status_routes_answer_ok_and_bad_bodies_get_our_error_shape() {
    let app = spawn_app().await;
    for path in ["/webhooks/rest/", "/webhooks/socketio/"] {
        assert_eq!(app.get_json(path).await, json!({"status": "ok"}), "{path}");
    }
    let response = app
        .client
        .post(app.url("/webhooks/rest/webhook"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"));
}

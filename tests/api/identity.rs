//! Verified identity and isolation: reads need the product's API key, chats
//! are verified with `userHash`, the same user id in two products never sees
//! the other's activity, and a product's allowed origins are enforced.

use std::time::Duration;

use copilot_server::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{API_KEY, TestApp, click_event, metric, product, spawn_app_with, user_hash};
use crate::socket_client::{SocketClient, texts};

const ACME_SECRET: &str = "acme-webhook-secret-123";
const ACME_KEY: &str = "acme-api-key-for-tests";
const ACME_IDENTITY: &str = "cis_acme_identity_for_tests";
const NO_ACTIVITY: &str = "haven't seen any activity";

/// The demo product plus `acme`, which requires verified identities.
fn with_acme(s: &mut Settings) {
    let mut acme = product("acme", ACME_SECRET);
    acme.api_key = Some(ACME_KEY.to_owned().into());
    acme.identity_secret = Some(ACME_IDENTITY.to_owned().into());
    acme.posthog_api_key = "phc_acme".to_owned();
    acme.allowed_origins = Some(vec!["https://app.acme.com".to_owned()]);
    s.products.push(acme);
}

/// user `u1` clicked "Demo thing" in demo and "Acme thing" in acme.
async fn same_user_in_two_products() -> TestApp {
    let app = spawn_app_with(with_acme).await;
    app.deliver_json(&click_event(
        "d1",
        "u1",
        "sd",
        "Demo thing",
        "https://demo.io/p",
    ))
    .await;
    let acme = app
        .post_webhook(
            "acme",
            Some(ACME_SECRET),
            click_event("a1", "u1", "sa", "Acme thing", "https://app.acme.com/p").to_string(),
        )
        .await;
    assert_eq!(acme.status(), StatusCode::OK);
    app
}

#[tokio::test]
async fn reads_need_the_products_api_key_and_see_only_its_users() {
    let app = same_user_in_two_products().await;
    for path in ["/reply/u1?query=hi", "/context/u1"] {
        let none = app.send(Method::GET, path, None).await;
        assert_eq!(
            none.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a key"
        );
        let body: Value = none.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("api_key"),
            "{body}"
        );
        let wrong = app.send(Method::GET, path, Some("nope")).await;
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong key"
        );
        let secret = app.send(Method::GET, path, Some(ACME_SECRET)).await;
        assert_eq!(
            secret.status(),
            StatusCode::UNAUTHORIZED,
            "{path}: the webhook secret is not a key"
        );
    }
    let demo = app.context_as(API_KEY, "u1").await["context"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        demo.contains("Demo thing") && !demo.contains("Acme thing"),
        "{demo}"
    );
    let acme = app.context_as(ACME_KEY, "u1").await["context"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        acme.contains("Acme thing") && !acme.contains("Demo thing"),
        "{acme}"
    );
    let reply: Value = app
        .reply_as(ACME_KEY, "u1", "what did I just do?")
        .await
        .json()
        .await
        .unwrap();
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.contains("Acme thing") && !text.contains("Demo thing"),
        "{text}"
    );
}

async fn ask_over_socket(app: &TestApp, claim: Value) -> String {
    let mut socket = SocketClient::connect(&app.address, Some(claim.clone()))
        .await
        .unwrap();
    socket.start_session(Some("chat-1")).await;
    socket
        .say_with("chat-1", claim, "what did I just do?")
        .await;
    texts(&socket.replies().await)
}

#[tokio::test]
async fn a_verified_socket_sees_its_activity_and_an_unverified_one_is_anonymous() {
    let app = same_user_in_two_products().await;
    let good = user_hash(ACME_IDENTITY, "u1");
    let verified = ask_over_socket(
        &app,
        json!({"productId": "acme", "userId": "u1", "userHash": good}),
    )
    .await;
    assert!(verified.contains("Acme thing"), "{verified}");
    assert!(!verified.contains("Demo thing"), "{verified}");

    let cases = [
        (
            "a wrong hash",
            json!({"productId": "acme", "userId": "u1", "userHash": user_hash("other", "u1")}),
        ),
        (
            "another user's hash",
            json!({"productId": "acme", "userId": "u1", "userHash": user_hash(ACME_IDENTITY, "u2")}),
        ),
        ("no hash", json!({"productId": "acme", "userId": "u1"})),
        (
            "no product with two configured",
            json!({"userId": "u1", "userHash": good}),
        ),
    ];
    for (what, claim) in cases {
        let text = ask_over_socket(&app, claim).await;
        assert!(
            !text.contains("Acme thing") && !text.contains("Demo thing"),
            "{what}: {text}"
        );
        assert!(
            text.contains(NO_ACTIVITY),
            "{what} is an anonymous visitor: {text}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metric(
            &metrics,
            "copilot_identity_unverified_total{channel=\"socketio\"} "
        ) >= 3.0,
        "unverified claims are counted: {metrics}"
    );
}

#[tokio::test]
async fn rasa_webchat_style_custom_data_only_is_verified_too() {
    let app = same_user_in_two_products().await;
    // rasa-webchat cannot set the connect auth; everything is in customData.
    let mut socket = SocketClient::connect(&app.address, None).await.unwrap();
    socket.start_session(Some("webchat-1")).await;
    let claim =
        json!({"productId": "acme", "userId": "u1", "userHash": user_hash(ACME_IDENTITY, "u1")});
    socket
        .say_with("webchat-1", claim, "what did I just do?")
        .await;
    let text = texts(&socket.replies().await);
    assert!(text.contains("Acme thing"), "{text}");
}

async fn rest(app: &TestApp, metadata: Value) -> String {
    let response = app
        .client
        .post(app.url("/webhooks/rest/webhook"))
        .json(&json!({"sender": "rest-1", "message": "what did I just do?", "metadata": metadata}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let items: Vec<Value> = response.json().await.unwrap();
    texts(&items)
}

#[tokio::test]
async fn rest_messages_are_verified_the_same_way() {
    let app = same_user_in_two_products().await;
    let good = user_hash(ACME_IDENTITY, "u1");
    let verified = rest(
        &app,
        json!({"customData": {"productId": "acme", "userId": "u1", "userHash": good}}),
    )
    .await;
    assert!(verified.contains("Acme thing"), "{verified}");
    let top_level = rest(
        &app,
        json!({"productId": "acme", "userId": "u1", "userHash": good}),
    )
    .await;
    assert!(top_level.contains("Acme thing"), "{top_level}");
    let wrong = rest(
        &app,
        json!({"productId": "acme", "userId": "u1", "userHash": "00"}),
    )
    .await;
    assert!(
        wrong.contains(NO_ACTIVITY) && !wrong.contains("Acme thing"),
        "{wrong}"
    );
    // The demo product trusts the claimed id (no identity secret), and still
    // only its own users' activity shows.
    let demo = rest(&app, json!({"productId": "demo", "userId": "u1"})).await;
    assert!(
        demo.contains("Demo thing") && !demo.contains("Acme thing"),
        "{demo}"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "copilot_identity_unverified_total{channel=\"rest\"} "
        ),
        1.0
    );
}

#[tokio::test]
async fn the_same_user_id_in_two_products_never_sees_the_others_activity_over_sockets() {
    let app = same_user_in_two_products().await;
    let demo = ask_over_socket(&app, json!({"productId": "demo", "userId": "u1"})).await;
    assert!(
        demo.contains("Demo thing") && !demo.contains("Acme thing"),
        "{demo}"
    );
}

#[tokio::test]
async fn proactive_offers_reach_only_verified_sockets_of_that_product() {
    let app = spawn_app_with(with_acme).await;
    let good =
        json!({"productId": "acme", "userId": "u1", "userHash": user_hash(ACME_IDENTITY, "u1")});
    let mut verified = SocketClient::connect(&app.address, Some(good))
        .await
        .unwrap();
    verified.start_session(Some("v")).await;
    let mut unverified = SocketClient::connect(
        &app.address,
        Some(json!({"productId": "acme", "userId": "u1"})),
    )
    .await
    .unwrap();
    unverified.start_session(Some("u")).await;
    let mut demo_u1 = SocketClient::connect(
        &app.address,
        Some(json!({"productId": "demo", "userId": "u1"})),
    )
    .await
    .unwrap();
    demo_u1.start_session(Some("d")).await;
    for row in 0..3 {
        let r = app
            .post_webhook(
                "acme",
                Some(ACME_SECRET),
                click_event(
                    &format!("e{row}"),
                    "u1",
                    "acme-s",
                    "Edit",
                    "https://app.acme.com/projects",
                )
                .to_string(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let offer = verified.next("bot_uttered").await;
    assert!(
        offer["text"]
            .as_str()
            .unwrap()
            .contains("Editing projects one by one"),
        "{offer}"
    );
    for (socket, what) in [
        (&mut unverified, "an unverified socket"),
        (&mut demo_u1, "u1 of another product"),
    ] {
        assert!(
            socket
                .try_next("bot_uttered", Duration::from_millis(500))
                .await
                .is_none(),
            "{what} gets no offer"
        );
    }
}

#[tokio::test]
async fn a_products_allowed_origins_are_enforced_for_sockets_and_captures() {
    let app = spawn_app_with(with_acme).await;
    let claim = || Some(json!({"productId": "acme"}));
    let refused =
        SocketClient::connect_with(&app.address, claim(), &[("Origin", "https://evil.example")])
            .await;
    let error = refused
        .err()
        .expect("a socket from another origin is refused");
    assert!(error.contains("not allowed"), "{error}");
    SocketClient::connect_with(&app.address, claim(), &[("Origin", "https://app.acme.com")])
        .await
        .expect("the allowed origin connects");
    SocketClient::connect_with(
        &app.address,
        Some(json!({"productId": "demo"})),
        &[("Origin", "https://evil.example")],
    )
    .await
    .expect("the demo allows any origin");

    let capture = |origin: &'static str| {
        let body = json!({"event": "$pageview", "properties": {"token": "phc_acme", "distinct_id": "u1",
            "$session_id": "s", "$current_url": "https://app.acme.com/"}});
        app.client
            .post(app.url("/e/"))
            .header("Origin", origin)
            .body(body.to_string())
            .send()
    };
    let refused = capture("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not allowed"),
        "{body}"
    );
    assert_eq!(
        capture("https://app.acme.com").await.unwrap().status(),
        StatusCode::OK
    );
}

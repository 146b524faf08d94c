use reqwest::header::{ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN};
use serde_json::json;

use crate::helpers::{click_event, spawn_app};

#[tokio::test]
async fn healthz_counts_users_and_sessions() {
    let app = spawn_app().await;
    assert_eq!(
        app.get_json("/healthz").await,
        json!({"status": "ok", "users_tracked": 0, "sessions_tracked": 0})
    );
    app.deliver_json(&json!([
        click_event("1", "u1", "s1", "A", "https://x.io/"),
        click_event("2", "u1", "s2", "B", "https://x.io/"),
        click_event("3", "u2", "s3", "C", "https://x.io/"),
    ]))
    .await;
    assert_eq!(
        app.get_json("/healthz").await,
        json!({"status": "ok", "users_tracked": 2, "sessions_tracked": 3})
    );
}

#[tokio::test]
async fn responses_carry_a_request_id_and_mirror_the_origin_with_credentials() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header(ORIGIN, "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
}

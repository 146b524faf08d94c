use copilot_server::ingest::auth::sign;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PRODUCT, SECRET, click_event, fixture, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_fixture_shape_is_accepted() {
    let cases = [
        (
            "posthog-webhook-autocapture.json",
            1,
            "stock webhook, identified",
        ),
        (
            "posthog-webhook-pageview-anonymous.json",
            1,
            "stock webhook, person null",
        ),
        (
            "autoplay-destination-flat.json",
            1,
            "flat Hog destination body",
        ),
        ("batch.json", 2, "batch with a custom event"),
    ];
    for (name, accepted, why) in cases {
        let app = spawn_app().await;
        let body = app.deliver(fixture(name)).await;
        assert_eq!(
            body,
            json!({"accepted": accepted, "ignored": 0, "duplicates": 0}),
            "{why}"
        );
    }
}

#[tokio::test]
async fn a_bare_array_of_events_is_accepted() {
    let app = spawn_app().await;
    let body = json!([
        {"event": "$pageview", "distinct_id": "u1", "uuid": "a1", "properties": {"$current_url": "https://x.io/a"}},
        click_event("a2", "u1", "s1", "Go", "https://x.io/a"),
    ]);
    assert_eq!(app.deliver_json(&body).await["accepted"], 2);
}

#[tokio::test]
async fn each_refusal_has_its_status_and_says_what_is_wrong() {
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 4096).await;
    let good = fixture("posthog-webhook-autocapture.json");
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            "nope",
            Some(SECRET),
            good.clone(),
            StatusCode::NOT_FOUND,
            "unknown product 'nope'",
        ),
        (
            PRODUCT,
            None,
            good.clone(),
            StatusCode::UNAUTHORIZED,
            "missing X-PostHog-Secret",
        ),
        (
            PRODUCT,
            Some("wrong"),
            good.clone(),
            StatusCode::UNAUTHORIZED,
            "does not match",
        ),
        (
            PRODUCT,
            Some(SECRET),
            vec![b' '; 5000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit of 4096 bytes",
        ),
        (
            PRODUCT,
            Some(SECRET),
            b"{\"event\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            PRODUCT,
            Some(SECRET),
            b"\"just a string\"".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: must be a JSON object",
        ),
        (
            PRODUCT,
            Some(SECRET),
            br#"{"batch":[{"event":"$pageview"}]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch[0].distinct_id: is required",
        ),
        (
            PRODUCT,
            Some(SECRET),
            br#"{"event":{"event":["x"],"distinct_id":"u"}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body.event.event: invalid type",
        ),
    ];
    for (product, secret, body, status, message) in cases {
        let response = app.post_webhook(product, secret, body).await;
        assert_eq!(response.status(), status, "expected {status} for {message}");
        let body: Value = response.json().await.expect("error body is JSON");
        let error = body["error"].as_str().expect("an `error` string");
        assert!(
            error.contains(message),
            "{error:?} should contain {message:?}"
        );
    }
    let health = app.get_json("/healthz").await;
    assert_eq!(health["sessions_tracked"], 0, "nothing refused was stored");
}

#[tokio::test]
async fn an_hmac_signature_of_the_body_is_accepted() {
    let app = spawn_app().await;
    let body = fixture("batch.json");
    let response = app
        .post_webhook(PRODUCT, Some(&sign(SECRET, &body)), body.clone())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let forged = app
        .post_webhook(PRODUCT, Some(&sign("guess", &body)), body)
        .await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_retried_delivery_is_not_stored_twice() {
    let app = spawn_app().await;
    let first = app
        .deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let retry = app
        .deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    assert_eq!(first, json!({"accepted": 1, "ignored": 0, "duplicates": 0}));
    assert_eq!(retry, json!({"accepted": 0, "ignored": 0, "duplicates": 1}));
    // The flat body has no uuid: a digest of its fields stands in.
    app.deliver(fixture("autoplay-destination-flat.json")).await;
    let flat_retry = app.deliver(fixture("autoplay-destination-flat.json")).await;
    assert_eq!(flat_retry["duplicates"], 1);

    let context = app.context("user_42").await;
    let text = context["context"].as_str().unwrap();
    assert_eq!(text.matches("Save changes").count(), 1, "{text}");
    assert_eq!(text.matches("Add Project").count(), 1, "{text}");
}

#[tokio::test]
async fn low_signal_events_are_counted_as_ignored() {
    let app = spawn_app().await;
    let body = json!({"batch": [
        {"event": "$identify", "distinct_id": "u", "uuid": "i1"},
        {"event": "$pageleave", "distinct_id": "u", "uuid": "i2"},
        {"event": "$feature_flag_called", "distinct_id": "u", "uuid": "i3"},
        {"event": "$pageview", "distinct_id": "u", "uuid": "i4", "properties": {"$current_url": "https://x.io/home"}},
    ]});
    assert_eq!(
        app.deliver_json(&body).await,
        json!({"accepted": 1, "ignored": 3, "duplicates": 0})
    );
}

#[tokio::test]
async fn events_without_a_session_are_kept_under_the_user() {
    let app = spawn_app().await;
    let body = json!({"event": "report_exported", "distinct_id": "solo", "uuid": "n1",
        "properties": {"$current_url": "https://x.io/reports/77"}});
    assert_eq!(app.deliver_json(&body).await["accepted"], 1);
    let context = app.context("solo").await;
    assert_eq!(context["has_activity"], true);
    assert!(
        context["context"]
            .as_str()
            .unwrap()
            .contains("report_exported: Triggered 'Report exported' on /reports/:id"),
        "{context}"
    );
}

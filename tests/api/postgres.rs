//! `[database] url = "postgres://…"`: the same data in a real Postgres that
//! the test starts (Debian's `postgresql`), shared by two instances.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::durable::{event, kill_9_during_load};
use crate::helpers::{PRODUCT, SECRET, TestApp, eventually, spawn_app_with};
use crate::services::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_answered_200_survives_kill_9_on_postgres() {
    let Some(pg) = Postgres::start("kill_9_on_postgres") else {
        return;
    };
    kill_9_during_load(&pg.url(), &[]).await;
}

/// Two instances on one Postgres: a product registered on A works on B, an
/// event kept by A is restored by an instance started later, and its retry
/// there is still a duplicate.
#[tokio::test]
async fn two_instances_share_products_and_state_through_postgres() {
    let Some(pg) = Postgres::start("two_instances_on_postgres") else {
        return;
    };
    let url = pg.url();
    let configure = |url: String| {
        move |s: &mut copilot_server::config::Settings| {
            s.database.url = url;
            s.admin.token = "admin-token-for-tests".into();
            s.database.product_refresh_seconds = Duration::from_millis(200);
        }
    };
    let a = spawn_app_with(configure(url.clone())).await;
    let b = spawn_app_with(configure(url.clone())).await;
    let registered: Value = a
        .send_json(
            reqwest::Method::POST,
            "/products",
            Some("admin-token-for-tests"),
            &json!({"product_id": "shared-app", "contact_email": "team@example.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = registered["webhook_secret"].as_str().unwrap().to_owned();
    let delivered = accepted_within(&b, "shared-app", &secret, &event(1), 10)
        .await
        .expect("B learns of the product A registered");
    assert_eq!(delivered["accepted"], 1, "{delivered}");

    a.deliver_json(&event(2)).await;
    let c = spawn_app_with(configure(url)).await;
    let context = c.context("load-user-2").await;
    assert!(
        context["context"].as_str().unwrap().contains("Button 2"),
        "{context}"
    );
    let retry = c.deliver_json(&event(2)).await;
    assert_eq!(retry["duplicates"], 1, "{retry}");
}

/// With Postgres down, ingest answers 503 with Retry-After (never 200 for an
/// event it could not keep) and chat still answers; when it is back, the
/// server recovers by itself.
#[tokio::test]
async fn postgres_down_gets_503_and_the_server_recovers_when_it_returns() {
    let Some(mut pg) = Postgres::start("postgres_down") else {
        return;
    };
    let url = pg.url();
    let app = spawn_app_with(move |s| s.database.url = url).await;
    app.deliver_json(&event(1)).await;
    pg.stop();

    let refused = app
        .post_webhook(PRODUCT, Some(SECRET), event(2).to_string())
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    let reply = app.reply_json("load-user-1", "what did I just do?").await;
    assert!(
        reply["reply"].as_str().unwrap().contains("Button 1"),
        "chat answers from memory while the database is down: {reply}"
    );

    pg.resume();
    let accepted = accepted_within(&app, PRODUCT, SECRET, &event(2), 20)
        .await
        .expect("ingest recovers once Postgres is back");
    assert_eq!(
        accepted["accepted"], 1,
        "the refused event is accepted, not a duplicate: {accepted}"
    );
}

/// Posts `body` until it is answered 200 (at most `seconds`); the answer.
async fn accepted_within(
    app: &TestApp,
    product: &str,
    secret: &str,
    body: &Value,
    seconds: u64,
) -> Option<Value> {
    eventually(Duration::from_secs(seconds), || async {
        let response = app
            .post_webhook(product, Some(secret), body.to_string())
            .await;
        if response.status() == StatusCode::OK {
            response.json::<Value>().await.ok()
        } else {
            None
        }
    })
    .await
}

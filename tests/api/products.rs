//! Onboarding: `POST /products` (the hosted connector's contract), who may
//! register and re-register, rotation with a grace period, the admin API, the
//! CLI on the same database as a running server, and the real autoplay-sdk.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, click_event, eventually, spawn_app_with};

const ADMIN: &str = "admin-token-for-tests";

async fn open_app() -> TestApp {
    spawn_app_with(|s| s.admin.open_registration = true).await
}

async fn register(app: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    app.send_json(Method::POST, "/products", token, &body).await
}

fn pageview(uuid: &str, user: &str) -> Value {
    click_event(
        uuid,
        user,
        "s1",
        "Projects",
        "https://app.acme.com/projects",
    )
}

#[tokio::test]
async fn an_open_registration_answers_the_connectors_fields_and_the_secret_works() {
    let app = open_app().await;
    let response = register(
        &app,
        None,
        json!({"product_id": "acme", "contact_email": "ops@acme.com", "force_reregister": false,
               "integration_type": "event_stream", "integration_config": {"mode": "sse"},
               "forward_url": "", "forward_secret": ""}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["product_id"], "acme");
    assert_eq!(body["webhook_url"], app.url("/webhook/acme"));
    assert_eq!(body["stream_url"], app.url("/stream/acme"));
    for key in [
        "webhook_secret",
        "unkey_key",
        "unkey_key_id",
        "api_key",
        "identity_secret",
        "posthog_api_key",
    ] {
        assert!(
            body[key].as_str().is_some_and(|v| v.len() >= 16),
            "{key} issued: {body}"
        );
    }
    let secret = body["webhook_secret"].as_str().unwrap();
    let delivered = app
        .post_webhook("acme", Some(secret), pageview("e1", "u1").to_string())
        .await;
    assert_eq!(delivered.status(), StatusCode::OK);
    let wrong = app
        .post_webhook(
            "acme",
            Some("demo-secret-change-me"),
            pageview("e2", "u1").to_string(),
        )
        .await;
    assert_eq!(
        wrong.status(),
        StatusCode::UNAUTHORIZED,
        "another product's secret"
    );

    // The api_key reads this product's users; the keys are never shown again.
    let api_key = body["api_key"].as_str().unwrap();
    let context = app.context_as(api_key, "u1").await;
    assert_eq!(context["has_activity"], true);
    let listed: Value = app.get_json_as("/products/acme", api_key).await;
    assert_eq!(
        listed["identity_required"], true,
        "onboarded products verify identities"
    );
    let text = listed.to_string();
    for key in ["webhook_secret", "unkey_key", "api_key", "identity_secret"] {
        assert!(
            !text.contains(body[key].as_str().unwrap()),
            "{key} not shown again"
        );
    }
}

#[tokio::test]
async fn registering_a_taken_id_is_409_and_bad_input_is_422() {
    let app = open_app().await;
    let first = register(
        &app,
        None,
        json!({"product_id": "acme", "contact_email": "ops@acme.com"}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let cases = [
        (
            json!({"product_id": "acme", "contact_email": "ops@acme.com"}),
            StatusCode::CONFLICT,
            "already registered",
        ),
        (
            json!({"product_id": "demo", "contact_email": "ops@acme.com"}),
            StatusCode::CONFLICT,
            "already registered",
        ),
        (
            json!({"product_id": "Acme Inc!", "contact_email": "ops@acme.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "product_id",
        ),
        (
            json!({"product_id": "x".repeat(65), "contact_email": "ops@acme.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "product_id",
        ),
        (
            json!({"product_id": "beta"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contact_email",
        ),
        (
            json!({"product_id": "beta", "contact_email": "nobody"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contact_email",
        ),
        (
            json!({"contact_email": "ops@acme.com"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "product_id",
        ),
        (
            json!({"product_id": "beta", "contact_email": "ops@acme.com", "webhook_secret": "short"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_secret",
        ),
    ];
    for (body, status, message) in cases {
        let response = register(&app, None, body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(message),
            "{body}: {error}"
        );
    }
    let malformed = app
        .client
        .post(app.url("/products"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_is_closed_by_default_and_says_how_to_open_it() {
    let app = spawn_app_with(|_| {}).await;
    let response = register(
        &app,
        None,
        json!({"product_id": "acme", "contact_email": "ops@acme.com"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let error: Value = response.json().await.unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("open_registration") && message.contains("COPILOT__ADMIN__TOKEN"),
        "{message}"
    );
}

#[tokio::test]
async fn with_an_admin_token_registration_needs_it() {
    let app = spawn_app_with(|s| s.admin.token = ADMIN.to_owned().into()).await;
    let body = json!({"product_id": "acme", "contact_email": "ops@acme.com"});
    assert_eq!(
        register(&app, None, body.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        register(&app, Some("not-the-token"), body.clone())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        register(&app, Some("demo-api-key-change-me"), body.clone())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "a product's key is not the admin token"
    );
    assert_eq!(
        register(&app, Some(ADMIN), body).await.status(),
        StatusCode::CREATED
    );
    // Only the admin lists every product.
    let all = app.send(Method::GET, "/products", Some(ADMIN)).await;
    let ids: Vec<String> = all
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|p| p["product_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["acme", "demo"]);
    let as_demo = app.get_json_as("/products", "demo-api-key-change-me").await;
    assert_eq!(
        as_demo.as_array().unwrap().len(),
        1,
        "a product's key lists itself only"
    );
    let anonymous = app.send(Method::GET, "/products", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // And only the admin removes one.
    let by_owner = app
        .send(
            Method::DELETE,
            "/products/demo",
            Some("demo-api-key-change-me"),
        )
        .await;
    assert_eq!(by_owner.status(), StatusCode::UNAUTHORIZED);
    let removed = app
        .send(Method::DELETE, "/products/acme", Some(ADMIN))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let gone = app
        .post_webhook("acme", Some("whatever-secret"), "{}")
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn re_registration_needs_the_products_key_and_the_old_secret_works_only_for_the_grace() {
    let app = spawn_app_with(|s| {
        s.admin.open_registration = true;
        s.admin.secret_grace_seconds = Duration::from_millis(1500);
    })
    .await;
    let first: Value = register(
        &app,
        None,
        json!({"product_id": "acme", "contact_email": "ops@acme.com"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let old_secret = first["webhook_secret"].as_str().unwrap().to_owned();
    let api_key = first["api_key"].as_str().unwrap().to_owned();
    let again =
        json!({"product_id": "acme", "contact_email": "ops@acme.com", "force_reregister": true});

    // Open registration never lets anyone take over an existing product.
    let taken = register(&app, None, again.clone()).await;
    assert_eq!(taken.status(), StatusCode::UNAUTHORIZED);
    let other_key = register(&app, Some("demo-api-key-change-me"), again.clone()).await;
    assert_eq!(
        other_key.status(),
        StatusCode::UNAUTHORIZED,
        "another product's key"
    );

    let rotated = register(&app, Some(&api_key), again).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(
        rotated["unkey_key"]
            .as_str()
            .is_some_and(|k| k != first["unkey_key"]),
        "a new stream key"
    );
    assert_eq!(
        rotated["api_key"],
        Value::Null,
        "the api_key stays and is not shown"
    );

    for (i, secret) in [&new_secret, &old_secret].into_iter().enumerate() {
        let during = app
            .post_webhook(
                "acme",
                Some(secret),
                pageview(&format!("grace-{i}"), "u1").to_string(),
            )
            .await;
        assert_eq!(
            during.status(),
            StatusCode::OK,
            "secret {i} during the grace period"
        );
    }
    let refused = eventually(Duration::from_secs(5), || async {
        let after = app
            .post_webhook(
                "acme",
                Some(&old_secret),
                pageview(&uuid(), "u1").to_string(),
            )
            .await;
        (after.status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert!(
        refused.is_some(),
        "the old secret is refused once the grace is over"
    );
    let still = app
        .post_webhook(
            "acme",
            Some(&new_secret),
            pageview(&uuid(), "u1").to_string(),
        )
        .await;
    assert_eq!(still.status(), StatusCode::OK);
}

fn uuid() -> String {
    format!("{:x}", rand_u128())
}

fn rand_u128() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[tokio::test]
async fn rotating_the_api_key_retires_the_old_one_at_once() {
    let app = open_app().await;
    let first: Value = register(
        &app,
        None,
        json!({"product_id": "acme", "contact_email": "ops@acme.com"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let old_key = first["api_key"].as_str().unwrap();
    let response = app
        .send_json(
            Method::POST,
            "/products/acme/rotate",
            Some(old_key),
            &json!({"api_key": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_eq!(rotated["identity_secret"], Value::Null, "not asked for");
    assert_eq!(
        app.reply_as(old_key, "u1", "hi").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.reply_as(new_key, "u1", "hi").await.status(),
        StatusCode::OK
    );
    let by_stranger = app.send(Method::POST, "/products/acme/rotate", None).await;
    assert_eq!(by_stranger.status(), StatusCode::UNAUTHORIZED);

    // Owners change settings that are not keys.
    let patched = app
        .send_json(
            Method::PATCH,
            "/products/acme",
            Some(new_key),
            &json!({"allowed_origins": ["https://app.acme.com/"], "identity_required": false}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let view: Value = patched.json().await.unwrap();
    assert_eq!(view["allowed_origins"], json!(["https://app.acme.com"]));
    assert_eq!(view["identity_required"], false);
}

#[tokio::test]
async fn config_products_are_seeded_with_their_keys_and_identity_on_with_a_secret() {
    let app = spawn_app_with(|s| {
        let mut acme = crate::helpers::product("acme", "acme-webhook-secret-123");
        acme.api_key = Some("acme-api-key".to_owned().into());
        acme.identity_secret = Some("acme-identity".to_owned().into());
        s.products.push(acme);
        s.admin.token = ADMIN.to_owned().into();
    })
    .await;
    let view: Value = app.get_json_as("/products/acme", "acme-api-key").await;
    assert_eq!(view["identity_required"], true);
    assert_eq!(view["has_identity_secret"], true);
    let demo: Value = app.get_json_as("/products/demo", ADMIN).await;
    assert_eq!(
        demo["identity_required"], false,
        "the demo trusts its widget"
    );
}

/// The binary's `products` subcommand on the database at `db`.
async fn cli_output(db: &str, args: &[&str]) -> std::process::Output {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_copilot-server"))
        .env("COPILOT__DATABASE__URL", db)
        .env("RUST_LOG", "warn")
        .args(args)
        .output();
    tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the CLI finishes in time")
        .expect("the CLI runs")
}

/// As [`cli_output`], expecting success and JSON on stdout.
async fn cli(db: &str, args: &[&str]) -> Value {
    let output = cli_output(db, args).await;
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// Polls a delivery to `product` with `secret` until it is answered `status`
/// (a running server picks up CLI changes on its next refresh).
async fn webhook_answers(
    app: &TestApp,
    product: &str,
    secret: Option<&str>,
    status: StatusCode,
) -> bool {
    eventually(Duration::from_secs(5), || async {
        let r = app
            .post_webhook(product, secret, pageview(&uuid(), "u1").to_string())
            .await;
        (r.status() == status).then_some(())
    })
    .await
    .is_some()
}

#[tokio::test]
async fn the_cli_onboards_into_the_same_database_a_running_server_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}",
        dir.path().join("nested/copilot.db").display()
    );
    let added = cli(
        &db,
        &[
            "products",
            "add",
            "--id",
            "acme",
            "--contact-email",
            "ops@acme.com",
            "--json",
        ],
    )
    .await;
    for key in [
        "webhook_url",
        "webhook_secret",
        "stream_url",
        "stream_key",
        "unkey_key",
        "api_key",
        "identity_secret",
        "posthog_api_key",
    ] {
        assert!(
            added[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {added}"
        );
    }

    let url = db.clone();
    let app = spawn_app_with(move |s| {
        s.database.url = url;
        s.database.product_refresh_seconds = Duration::from_millis(200);
    })
    .await;
    let ok = app
        .post_webhook(
            "acme",
            added["webhook_secret"].as_str(),
            pageview("c1", "u1").to_string(),
        )
        .await;
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "the server knows the CLI's product"
    );

    // Added while the server runs: seen after a refresh, without a restart.
    let beta = cli(
        &db,
        &[
            "products",
            "add",
            "--id",
            "beta",
            "--contact-email",
            "ops@beta.com",
            "--json",
        ],
    )
    .await;
    let seen = webhook_answers(
        &app,
        "beta",
        beta["webhook_secret"].as_str(),
        StatusCode::OK,
    )
    .await;
    assert!(seen, "the running server sees a product the CLI added");

    let listed = cli(&db, &["products", "list", "--json"]).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["product_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["acme", "beta", "demo"],
        "config products are in the database too"
    );

    let rotated = cli(&db, &["products", "rotate", "--id", "beta", "--json"]).await;
    assert_ne!(rotated["webhook_secret"], beta["webhook_secret"]);
    cli(&db, &["products", "remove", "--id", "beta"]).await;
    let gone = webhook_answers(
        &app,
        "beta",
        rotated["webhook_secret"].as_str(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(gone, "a removed product is gone from the running server");
}

#[tokio::test]
async fn the_cli_refuses_a_taken_id_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("copilot.db").display());
    let args = [
        "products",
        "add",
        "--id",
        "demo",
        "--contact-email",
        "ops@acme.com",
    ];
    let output = cli_output(&db, &args).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already registered"));
}

#[tokio::test]
async fn the_real_autoplay_sdk_onboards_against_us_unchanged() {
    let Some(python) = crate::helpers::python_or_skip("autoplay_sdk.admin.onboard") else {
        return;
    };
    let app = open_app().await;
    crate::helpers::run_python_check(
        &python,
        "onboard_sdk.py",
        &["--base-url", &app.address],
        Duration::from_secs(60),
        "4 passed, 0 failed",
    )
    .await;
}

#[tokio::test]
async fn the_cli_sets_and_stops_push_delivery_and_refuses_private_urls() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("copilot.db").display());
    let refused = cli_output(
        &db,
        &[
            "products",
            "add",
            "--id",
            "acme",
            "--contact-email",
            "ops@acme.example",
            "--forward-url",
            "http://127.0.0.1:9000/hook",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("private"), "{stderr}");

    cli(
        &db,
        &[
            "products",
            "add",
            "--id",
            "acme",
            "--contact-email",
            "ops@acme.example",
            "--forward-url",
            "https://93.184.216.34/hook",
            "--forward-secret",
            "push-secret",
            "--json",
        ],
    )
    .await;
    let acme = || async {
        let listed = cli(&db, &["products", "list", "--json"]).await;
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product_id"] == "acme")
            .cloned()
            .unwrap()
    };
    let listed = acme().await;
    assert_eq!(listed["forward_url"], "https://93.184.216.34/hook");
    assert_eq!(listed["has_forward_secret"], true);

    let off = cli_output(&db, &["products", "forward", "--id", "acme", "--url", ""]).await;
    assert!(off.status.success());
    assert!(String::from_utf8_lossy(&off.stdout).contains("push delivery off"));
    let listed = acme().await;
    assert_eq!(listed["forward_url"], Value::Null);
    assert_eq!(listed["has_forward_secret"], false);
}

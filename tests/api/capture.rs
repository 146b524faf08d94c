use std::io::Write;

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const KEY: &str = "phc_demo_copilot";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An autocapture click as posthog-js 1.449 sends it.
fn click(uuid: &str, user: &str, elements: Value) -> Value {
    let mut properties = json!({
        "distinct_id": user,
        "token": KEY,
        "$session_id": format!("ph-{user}"),
        "$current_url": "http://127.0.0.1:5005/projects/42",
        "$event_type": "click",
        "$lib": "web",
    });
    match elements {
        Value::String(chain) => properties["$elements_chain"] = json!(chain),
        array => properties["$elements"] = array,
    }
    json!({"uuid": uuid, "event": "$autocapture", "properties": properties, "timestamp": "2026-11-25T10:00:00Z"})
}

const CHAIN: &str = r#"button.btn:attr__type="submit"nth-child="2"nth-of-type="1"text="Save changes";form#edit-project:attr__id="edit-project"nth-child="1"nth-of-type="1""#;

async fn post(app: &TestApp, path: &str, body: Vec<u8>, content_type: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn context(app: &TestApp, user: &str) -> String {
    app.context(user).await["context"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn posthog_js_bodies_in_every_encoding_become_actions() {
    let app = spawn_app().await;
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.encode(v.to_string());
    let form = |v: &Value| {
        format!(
            "data={}",
            url::form_urlencoded::byte_serialize(b64(v).as_bytes()).collect::<String>()
        )
        .into_bytes()
    };
    let batch = |user: &str| json!({"api_key": KEY, "batch": [click(&format!("{user}-1"), user, json!(CHAIN))], "sent_at": "now"});
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "gzip",
            "/e/?compression=gzip-js&ver=1.449.2",
            gzip(batch("gzip").to_string().as_bytes()),
            "text/plain",
        ),
        (
            "gzip-no-query",
            "/i/v0/e/",
            gzip(batch("gzip-no-query").to_string().as_bytes()),
            "text/plain",
        ),
        (
            "json",
            "/batch/",
            batch("json").to_string().into_bytes(),
            "application/json",
        ),
        (
            "base64",
            "/e/?compression=base64",
            form(&batch("base64")),
            "application/x-www-form-urlencoded",
        ),
        (
            "single",
            "/capture/",
            click("single-1", "single", json!(CHAIN))
                .to_string()
                .into_bytes(),
            "text/plain",
        ),
    ];
    for (user, path, body, content_type) in cases {
        let response = post(&app, path, body, content_type).await;
        assert_eq!(response.status(), StatusCode::OK, "{user} via {path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"status": 1})
        );
        let text = context(&app, user).await;
        assert!(
            text.contains("Clicked 'Save changes' button on /projects/:id"),
            "{user}: {text}"
        );
    }
}

#[tokio::test]
async fn an_elements_array_gives_the_same_action_as_the_chain() {
    let app = spawn_app().await;
    let elements = json!([
        {"tag_name": "button", "$el_text": "Save changes", "attr__type": "submit", "nth_child": 2, "nth_of_type": 1},
        {"tag_name": "form", "attr__id": "edit-project", "nth_child": 1, "nth_of_type": 1}
    ]);
    for (user, elements) in [("arr", elements), ("str", json!(CHAIN))] {
        let body = json!({"api_key": KEY, "batch": [click(&format!("{user}-e"), user, elements)]});
        assert_eq!(
            post(&app, "/e/", body.to_string().into_bytes(), "text/plain")
                .await
                .status(),
            200
        );
    }
    let strip = |t: String| t.replace("ph-arr", "").replace("ph-str", "");
    assert_eq!(
        strip(context(&app, "arr").await),
        strip(context(&app, "str").await)
    );
}

#[tokio::test]
async fn identify_teaches_the_users_email() {
    let app = spawn_app().await;
    let identify = json!({"api_key": KEY, "batch": [{
        "uuid": "id-1", "event": "$identify",
        "properties": {"distinct_id": "demo_user", "$set": {"email": "casey.jones@example.com"}}
    }, click("c-1", "demo_user", json!(CHAIN))]});
    post(
        &app,
        "/e/",
        gzip(identify.to_string().as_bytes()),
        "text/plain",
    )
    .await;
    let reply = app.reply_json("demo_user", "what did I just do?").await;
    assert_eq!(reply["name"], "Casey Jones");
}

#[tokio::test]
async fn bad_captures_are_refused_clearly_and_store_nothing() {
    let app = spawn_app().await;
    let good = json!({"api_key": KEY, "batch": [click("x-1", "victim", json!(CHAIN))]}).to_string();
    let mut truncated = gzip(good.as_bytes());
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "/e/?compression=gzip-js",
            truncated,
            StatusCode::BAD_REQUEST,
            "not valid gzip",
        ),
        (
            "/e/?compression=base64",
            b"data=%%%%not-base64".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid base64",
        ),
        (
            "/e/",
            b"{\"batch\": [".to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            "/e/",
            gzip(&vec![b' '; 8 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit",
        ),
        (
            "/e/",
            good.replace(KEY, "phc_unknown").into_bytes(),
            StatusCode::UNAUTHORIZED,
            "unknown project API key 'phc_unknown'",
        ),
        (
            "/e/",
            json!([{"event": "$pageview", "properties": {"distinct_id": "victim"}}])
                .to_string()
                .into_bytes(),
            StatusCode::UNAUTHORIZED,
            "no project API key",
        ),
    ];
    for (path, body, status, message) in cases {
        let response = post(&app, path, body, "text/plain").await;
        assert_eq!(response.status(), status, "{message}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(message),
            "{error}"
        );
    }
    assert_eq!(app.context("victim").await["has_activity"], false);
}

#[tokio::test]
async fn flags_decide_and_remote_config_let_posthog_js_start_quietly() {
    let app = spawn_app().await;
    for path in ["/flags/?v=2", "/decide/?v=4"] {
        let body: Value = app
            .client
            .post(app.url(path))
            .body("{}")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["featureFlags"], json!({}), "{path}");
        assert_eq!(body["flags"], json!({}), "{path}");
        assert_eq!(body["sessionRecording"], false, "{path}");
    }
    let config = app.get_json(&format!("/array/{KEY}/config")).await;
    assert_eq!(config["autocapture_opt_out"], false);
    assert_eq!(config["elementsChainAsString"], true);
    let js = app
        .client
        .get(app.url(&format!("/array/{KEY}/config.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(js.headers()["content-type"], "application/javascript");
    let js = js.text().await.unwrap();
    assert!(
        js.contains(&format!("window._POSTHOG_REMOTE_CONFIG[\"{KEY}\"]")),
        "{js}"
    );
}

#[tokio::test]
async fn capture_preflight_from_another_origin_is_allowed() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/e/"))
        .header("Origin", "https://shop.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

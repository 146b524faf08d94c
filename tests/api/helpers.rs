//! Starting the real server for a test and talking to it over HTTP.

use std::path::Path;

use copilot_server::config::Settings;
use copilot_server::startup::Application;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const PRODUCT: &str = "demo";
pub const SECRET: &str = "demo-secret-change-me";
/// The demo product's public API key (config/default.toml).
pub const API_KEY: &str = "demo-api-key-change-me";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The embedded defaults on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The embedded defaults, changed by `configure`, on a free port.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    // Server logs only on request: libtest does not capture another thread's stderr.
    if std::env::var_os("TEST_LOG").is_some() {
        copilot_server::telemetry::init(copilot_server::config::LogFormat::Pretty);
    }
    let mut settings = Settings::load_with_env(None, |_| None).expect("default settings load");
    settings.server.port = 0;
    // Each test server has a database of its own.
    settings.database.url = "sqlite::memory:".to_owned();
    configure(&mut settings);
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown,
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A stock PostHog webhook body for one autocapture click.
pub fn click_event(uuid: &str, user: &str, session: &str, label: &str, url: &str) -> Value {
    serde_json::json!({
        "event": {
            "uuid": uuid,
            "event": "$autocapture",
            "distinct_id": user,
            "timestamp": "2026-11-20T10:15:03.412Z",
            "elements_chain": format!("button.btn:text=\"{label}\";body:nth-child=\"2\""),
            "properties": {
                "$event_type": "click",
                "$el_text": label,
                "$session_id": session,
                "$current_url": url,
                "email": format!("{user}@example.com"),
            }
        },
        "person": null
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_webhook(
        &self,
        product: &str,
        secret: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self
            .client
            .post(self.url(&format!("/webhook/{product}")))
            .header("content-type", "application/json")
            .body(body);
        if let Some(secret) = secret {
            request = request.header("X-PostHog-Secret", secret);
        }
        request.send().await.expect("webhook request sent")
    }

    /// Posts a body to the demo product with the right secret; expects 200.
    pub async fn deliver(&self, body: impl Into<reqwest::Body>) -> Value {
        let response = self.post_webhook(PRODUCT, Some(SECRET), body).await;
        assert_eq!(response.status(), StatusCode::OK, "delivery accepted");
        response.json().await.expect("json body")
    }

    pub async fn deliver_json(&self, body: &Value) -> Value {
        self.deliver(body.to_string()).await
    }

    /// `GET /reply/{user}` with the demo product's API key.
    pub async fn reply(&self, user: &str, query: &str) -> Response {
        self.reply_as(API_KEY, user, query).await
    }

    /// `GET /reply/{user}` with `api_key`.
    pub async fn reply_as(&self, api_key: &str, user: &str, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/reply/{user}")))
            .bearer_auth(api_key)
            .query(&[("query", query)])
            .send()
            .await
            .expect("reply request sent")
    }

    pub async fn reply_json(&self, user: &str, query: &str) -> Value {
        let response = self.reply(user, query).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json body")
    }

    /// `GET /context/{user}` with the demo product's API key; expects 200.
    pub async fn context(&self, user: &str) -> Value {
        self.context_as(API_KEY, user).await
    }

    pub async fn context_as(&self, api_key: &str, user: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/context/{user}")))
            .bearer_auth(api_key)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET /context/{user}");
        response.json().await.expect("json body")
    }

    /// A request without a body and, optionally, a bearer token.
    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `GET path` with a bearer token; expects 200 and returns the JSON body.
    pub async fn get_json_as(&self, path: &str, token: &str) -> Value {
        let response = self.send(reqwest::Method::GET, path, Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json body")
    }

    /// A request with a JSON body and, optionally, a bearer token.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// `GET /metrics` as Prometheus text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.expect("text body")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json body")
    }
}

/// The value of the sample whose line starts with `line_prefix` (name, labels
/// and a space), or 0 when there is none yet.
pub fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// The app with its LLM pointed at `fake`, short timeouts, changed by `configure`.
pub async fn spawn_app_with_llm(
    fake: &crate::fake_llm::FakeLlm,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let base_url = fake.base_url.clone();
    spawn_app_with(move |s| {
        s.llm.api_key = "sk-test".to_owned();
        s.llm.base_url = base_url;
        s.llm.timeout_ms = 1_000;
        configure(s);
    })
    .await
}

/// A `[[products]]` entry with only an id and a webhook secret.
pub fn product(id: &str, webhook_secret: &str) -> copilot_server::config::ProductSettings {
    copilot_server::config::ProductSettings {
        id: id.to_owned(),
        webhook_secret: webhook_secret.to_owned(),
        posthog_api_key: String::new(),
        contact_email: None,
        api_key: None,
        stream_key: None,
        identity_secret: None,
        identity_required: None,
        allowed_origins: None,
        knowledge_dir: None,
    }
}

/// `hex(HMAC-SHA256(secret, user))`, as a product's backend computes it.
pub fn user_hash(secret: &str, user: &str) -> String {
    copilot_server::identity::user_hash(secret, user)
}

/// Polls `check` until it returns `Some`, for at most `wait`.
pub async fn eventually<T, F, Fut>(wait: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    tokio::time::timeout(wait, async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .ok()
}

/// The Python of a virtualenv that can `import module` (CI's sets
/// `COPILOT_PYTHON`), else a few usual local ones.
pub fn python_with(module: &str) -> Option<String> {
    let candidates = [
        std::env::var("COPILOT_PYTHON").ok(),
        Some("/tmp/copilot-ci-venv/bin/python".to_owned()),
        Some("/tmp/autoplay-venv/bin/python".to_owned()),
        Some("/tmp/v/bin/python".to_owned()),
    ];
    candidates.into_iter().flatten().find(|python| {
        std::process::Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The Python of a virtualenv with `module`; `None` (the caller skips) when
/// there is none, unless `COPILOT_REQUIRE_PYTHON` is set (CI), which fails.
pub fn python_or_skip(module: &str) -> Option<String> {
    let found = python_with(module);
    if found.is_none() {
        assert!(
            std::env::var_os("COPILOT_REQUIRE_PYTHON").is_none(),
            "COPILOT_REQUIRE_PYTHON is set but no virtualenv with {module} was found"
        );
        eprintln!("SKIPPED: no virtualenv with {module} (set COPILOT_PYTHON); see .ci/run");
    }
    found
}

/// Runs `tests/python/{script}` with `args`; expects it to succeed within
/// `wait` and to print `summary` ("N passed, 0 failed").
pub async fn run_python_check(
    python: &str,
    script: &str,
    args: &[&str],
    wait: std::time::Duration,
    summary: &str,
) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let output = tokio::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output();
    let output = tokio::time::timeout(wait, output)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish in {wait:?}"))
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(summary), "{stdout}");
}

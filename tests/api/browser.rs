//! End-to-end browser tests: a real Chromium (driven by playwright-core from
//! `npm ci`) against the real server, through `tests/browser/e2e.mjs`.
//!
//! Skipped with a loud message when Chromium (`/usr/bin/chromium`, or the path in
//! `COPILOT_CHROMIUM`), node or a needed npm package is missing, unless
//! `COPILOT_REQUIRE_BROWSER=1` (CI sets it) turns that into a failure.
//! Screenshots go to `test-output/browser/`.
//!
//! The `console_*` tests drive the team console at `/admin` (docs/console-api.md)
//! on a server with an admin token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_app_with_llm};

const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium_path() -> PathBuf {
    std::env::var_os("COPILOT_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from)
}

/// The Chromium to use, or `None` (after a loud skip message) when something
/// the browser test needs is missing. Panics instead of skipping when
/// `COPILOT_REQUIRE_BROWSER=1`.
fn browser_ready(test: &str, packages: &[&str]) -> Option<PathBuf> {
    let chromium = chromium_path();
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!(
            "Chromium at {} (`apt-get install chromium`, or set COPILOT_CHROMIUM)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        missing.push("node".to_owned());
    }
    for package in packages {
        if !root()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
        {
            missing.push(format!("node_modules/{package} (run `npm ci`)"));
        }
    }
    if missing.is_empty() {
        return Some(chromium);
    }
    let message = format!("missing {}", missing.join(", "));
    assert!(
        std::env::var("COPILOT_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "{test}: {message} (required because COPILOT_REQUIRE_BROWSER=1)"
    );
    eprintln!("\n!!!!! SKIPPED the browser test {test}: {message} !!!!!\n");
    None
}

/// One run of `tests/browser/e2e.mjs`.
struct Scenario<'a> {
    /// Its `--only` name.
    name: &'a str,
    /// Files it must write to `test-output/browser/`.
    screenshots: &'a [&'a str],
    /// The whole answer the fake LLM streams (`--expect-text`), for the
    /// scenarios that need one.
    expect_text: Option<&'a str>,
    /// More arguments for e2e.mjs (the console's `--admin-token`, …).
    args: &'a [&'a str],
}

/// Runs `scenario` against `server`, checks that it passed and wrote its
/// screenshots, and returns its stdout.
async fn run_e2e(server: &str, chromium: &Path, scenario: &Scenario<'_>) -> String {
    let Scenario {
        name: scenario,
        screenshots,
        expect_text,
        args,
    } = *scenario;
    let out = root().join("test-output/browser");
    std::fs::create_dir_all(&out).expect("create test-output/browser");
    for name in screenshots {
        let _ = std::fs::remove_file(out.join(name));
    }
    let mut command = Command::new("node");
    command
        .arg(root().join("tests/browser/e2e.mjs"))
        .arg("--server")
        .arg(server)
        .arg("--out")
        .arg(&out)
        .arg("--only")
        .arg(scenario);
    if let Some(text) = expect_text {
        command.arg("--expect-text").arg(text);
    }
    command.args(args);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        command
            .env("COPILOT_CHROMIUM", chromium)
            .current_dir(root())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("e2e.mjs --only {scenario} did not finish within 120 s"))
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The FAIL lines first: CI logs keep a failure's head and tail.
    let failures: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("FAIL "))
        .collect();
    assert!(
        output.status.success() && stdout.contains(&format!("PASS {scenario}")),
        "e2e.mjs --only {scenario} failed ({}): {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status,
        failures.join("\n")
    );
    for name in screenshots {
        let path = out.join(name);
        assert!(
            path.is_file(),
            "e2e.mjs passed but wrote no {}:\n{stdout}",
            path.display()
        );
    }
    stdout.into_owned()
}

#[tokio::test]
async fn the_demo_app_captures_clicks_and_the_widget_answers_from_them() {
    let Some(chromium) = browser_ready(
        "the_demo_app_captures_clicks_and_the_widget_answers_from_them",
        &["playwright-core"],
    ) else {
        return;
    };
    let app = spawn_app().await;
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "demo",
            screenshots: &["demo-widget.png", "demo-widget-phone.png"],
            expect_text: None,
            args: &[],
        },
    )
    .await;
    let context = app.context("demo_user").await;
    assert!(
        context["context"].to_string().contains("Save changes"),
        "the captured click is in the user's context: {context}"
    );
}

#[tokio::test]
async fn rasa_webchat_works_against_the_server_unchanged() {
    let Some(chromium) = browser_ready(
        "rasa_webchat_works_against_the_server_unchanged",
        &["playwright-core", "rasa-webchat"],
    ) else {
        return;
    };
    // e2e.mjs delivers tests/fixtures/posthog-webhook-autocapture.json itself.
    let app = spawn_app().await;
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "webchat",
            screenshots: &["rasa-webchat.png"],
            expect_text: None,
            args: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn the_demo_offers_bulk_edit_after_three_single_edits() {
    let Some(chromium) = browser_ready(
        "the_demo_offers_bulk_edit_after_three_single_edits",
        &["playwright-core"],
    ) else {
        return;
    };
    // e2e.mjs edits rows 1-3 with the widget closed; the server must push the
    // bulk-edit offer (forceOpen) and answer its "Show me bulk edit" chip with
    // a domHighlight of the demo's "Bulk edit" button.
    let app = spawn_app().await;
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "proactive",
            screenshots: &[
                "proactive-offer.png",
                "proactive-answer.png",
                "proactive-highlight.png",
            ],
            expect_text: None,
            args: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn the_widget_links_the_help_page_an_offline_answer_comes_from() {
    let Some(chromium) = browser_ready(
        "the_widget_links_the_help_page_an_offline_answer_comes_from",
        &["playwright-core"],
    ) else {
        return;
    };
    // No LLM: the answer is the best section of knowledge/demo/, with its source.
    let app = spawn_app().await;
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "citations",
            screenshots: &["citations.png"],
            expect_text: None,
            args: &[],
        },
    )
    .await;
}

/// What the streaming fake LLM writes, one chunk every 300 ms.
const STREAMED: [&str; 5] = [
    "Open ",
    "the project, ",
    "click 'Edit', ",
    "pick a new priority ",
    "and click 'Save changes'.",
];

/// The app with a fake LLM that streams [`STREAMED`].
async fn spawn_app_with_streaming_llm() -> (FakeLlm, TestApp) {
    let fake = FakeLlm::start(Behaviour::Stream {
        chunks: STREAMED.iter().map(|c| (*c).to_owned()).collect(),
        every: Duration::from_millis(300),
    })
    .await;
    // Writing the answer takes 1.5 s, more than the helper's 1 s timeout.
    let app = spawn_app_with_llm(&fake, |s| s.llm.timeout_ms = 10_000).await;
    (fake, app)
}

/// Checks the fake was asked `turns` times, each time for a stream it was let finish.
fn assert_streamed(fake: &FakeLlm, turns: usize) {
    let asked = fake.chat_requests();
    assert_eq!(asked.len(), turns, "one LLM call per question: {asked:?}");
    assert!(
        asked.iter().all(|r| r["stream"] == true),
        "every answer was asked for as a stream: {asked:?}"
    );
    assert_eq!(fake.cancelled(), 0, "no stream was cut off");
}

#[tokio::test]
async fn the_widget_shows_an_answer_as_it_is_written_then_once_whole() {
    let Some(chromium) = browser_ready(
        "the_widget_shows_an_answer_as_it_is_written_then_once_whole",
        &["playwright-core"],
    ) else {
        return;
    };
    let (fake, app) = spawn_app_with_streaming_llm().await;
    let answer = STREAMED.concat();
    // e2e.mjs asks twice: with the panel open, then closed (the unread badge).
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "stream",
            screenshots: &["stream-draft.png", "stream-final.png"],
            expect_text: Some(&answer),
            args: &[],
        },
    )
    .await;
    assert_streamed(&fake, 2);
}

#[tokio::test]
async fn rasa_webchat_asking_for_a_stream_still_shows_one_whole_answer() {
    let Some(chromium) = browser_ready(
        "rasa_webchat_asking_for_a_stream_still_shows_one_whole_answer",
        &["playwright-core", "rasa-webchat"],
    ) else {
        return;
    };
    let (fake, app) = spawn_app_with_streaming_llm().await;
    let answer = STREAMED.concat();
    run_e2e(
        &app.address,
        &chromium,
        &Scenario {
            name: "webchat-stream",
            screenshots: &["rasa-webchat-stream.png"],
            expect_text: Some(&answer),
            args: &[],
        },
    )
    .await;
    assert_streamed(&fake, 1);
}

// ---------------------------------------------------------------- the team console

/// The `[admin] token` of the console tests' servers.
const CONSOLE_ADMIN_TOKEN: &str = "console-admin-token-for-tests";
/// A second product for the console's login scenario: demo must not see it.
const OTHER_PRODUCT: &str = "acme";
const OTHER_API_KEY: &str = "acme-console-api-key";

/// The app with an admin token (the console's admin login), changed by `configure`.
async fn spawn_console_app(
    configure: impl FnOnce(&mut copilot_server::config::Settings),
) -> TestApp {
    spawn_app_with(|s| {
        s.admin.token = CONSOLE_ADMIN_TOKEN.to_owned().into();
        configure(s);
    })
    .await
}

/// Runs the console scenario `name` against `app`; it must write `screenshots`.
async fn run_console(app: &TestApp, chromium: &Path, name: &str, screenshots: &[&str]) -> String {
    let other = format!("{OTHER_PRODUCT}:{OTHER_API_KEY}");
    run_e2e(
        &app.address,
        chromium,
        &Scenario {
            name,
            screenshots,
            expect_text: None,
            args: &[
                "--admin-token",
                CONSOLE_ADMIN_TOKEN,
                "--other-product",
                &other,
            ],
        },
    )
    .await
}

#[tokio::test]
async fn console_logins_see_only_what_they_may() {
    let Some(chromium) = browser_ready(
        "console_logins_see_only_what_they_may",
        &["playwright-core"],
    ) else {
        return;
    };
    // An admin, demo's API key and a second product whose turns demo must not see.
    let app = spawn_console_app(|s| {
        let mut acme = crate::helpers::product(OTHER_PRODUCT, "acme-webhook-secret-123");
        acme.api_key = Some(OTHER_API_KEY.to_owned().into());
        s.products.push(acme);
    })
    .await;
    run_console(&app, &chromium, "console-login", &["console-login.png"]).await;
}

#[tokio::test]
async fn console_live_shows_a_sessions_new_actions_without_a_reload() {
    let Some(chromium) = browser_ready(
        "console_live_shows_a_sessions_new_actions_without_a_reload",
        &["playwright-core"],
    ) else {
        return;
    };
    // e2e.mjs delivers the PostHog webhook events while the Live page is open.
    let app = spawn_console_app(|_| {}).await;
    run_console(&app, &chromium, "console-live", &["console-live.png"]).await;
}

#[tokio::test]
async fn console_transcript_explains_a_widget_turn_and_its_thumbs() {
    let Some(chromium) = browser_ready(
        "console_transcript_explains_a_widget_turn_and_its_thumbs",
        &["playwright-core"],
    ) else {
        return;
    };
    let app = spawn_console_app(|_| {}).await;
    run_console(
        &app,
        &chromium,
        "console-transcript",
        &["console-conversations.png", "console-transcript.png"],
    )
    .await;
}

/// Copies `from` (files only, recursively) into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's folder");
    for entry in std::fs::read_dir(from).expect("read the intents folder") {
        let entry = entry.expect("a folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a file");
        }
    }
}

#[tokio::test]
async fn console_inbox_labels_a_message_and_the_classifier_learns_it() {
    let Some(chromium) = browser_ready(
        "console_inbox_labels_a_message_and_the_classifier_learns_it",
        &["playwright-core"],
    ) else {
        return;
    };
    // Labelling writes the overrides file beside the intents folder (its
    // parent): work on a copy so the repository's intents/ never change.
    let dir = tempfile::tempdir().expect("temp dir");
    let intents = dir.path().join("intents");
    copy_dir(&root().join("intents"), &intents);
    let app = spawn_console_app(|s| s.nlu.intents_dir = intents.clone()).await;
    run_console(&app, &chromium, "console-inbox", &["console-inbox.png"]).await;

    let overrides = std::fs::read_to_string(dir.path().join("nlu-overrides.yml"))
        .expect("labelling wrote nlu-overrides.yml beside the intents folder");
    assert!(
        overrides.contains("greet") && overrides.contains("ahoy there"),
        "the overrides file holds the labelled example:\n{overrides}"
    );
    assert!(
        !root().join("nlu-overrides.yml").exists(),
        "nothing was written into the repository"
    );
    let parsed: serde_json::Value = app
        .client
        .post(app.url("/model/parse"))
        .body(r#"{"text": "ahoy there"}"#)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("json body");
    assert_eq!(parsed["intent"]["name"], "greet", "{parsed}");
}

#[tokio::test]
async fn console_numbers_draws_its_charts_from_the_days_turns() {
    let Some(chromium) = browser_ready(
        "console_numbers_draws_its_charts_from_the_days_turns",
        &["playwright-core"],
    ) else {
        return;
    };
    let app = spawn_console_app(|_| {}).await;
    run_console(&app, &chromium, "console-numbers", &["console-numbers.png"]).await;
}

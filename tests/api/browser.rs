//! End-to-end browser tests: a real Chromium (driven by playwright-core from
//! `npm ci`) against the real server, through `tests/browser/e2e.mjs`.
//!
//! Skipped with a loud message when Chromium (`/usr/bin/chromium`, or the path in
//! `COPILOT_CHROMIUM`), node or a needed npm package is missing, unless
//! `COPILOT_REQUIRE_BROWSER=1` (CI sets it) turns that into a failure.
//! Screenshots go to `test-output/browser/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::helpers::spawn_app;

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

/// Runs `tests/browser/e2e.mjs --only <scenario>` against `server`, checks that
/// it passed and wrote `screenshots`, and returns its stdout.
async fn run_e2e(server: &str, scenario: &str, chromium: &Path, screenshots: &[&str]) -> String {
    let out = root().join("test-output/browser");
    std::fs::create_dir_all(&out).expect("create test-output/browser");
    for name in screenshots {
        let _ = std::fs::remove_file(out.join(name));
    }
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("node")
            .arg(root().join("tests/browser/e2e.mjs"))
            .arg("--server")
            .arg(server)
            .arg("--out")
            .arg(&out)
            .arg("--only")
            .arg(scenario)
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
    assert!(
        output.status.success() && stdout.contains(&format!("PASS {scenario}")),
        "e2e.mjs --only {scenario} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
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
        "demo",
        &chromium,
        &["demo-widget.png", "demo-widget-phone.png"],
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
    run_e2e(&app.address, "webchat", &chromium, &["rasa-webchat.png"]).await;
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
    // bulk-edit offer (forceOpen) and answer its "Show me bulk edit" chip.
    let app = spawn_app().await;
    run_e2e(
        &app.address,
        "proactive",
        &chromium,
        &["proactive-offer.png", "proactive-answer.png"],
    )
    .await;
}

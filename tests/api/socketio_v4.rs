//! A protocol-v4 client (node socket.io-client 2.x, from `npm ci`) against the
//! real server. Skipped with a loud message when node or the package is missing,
//! unless `COPILOT_REQUIRE_NODE=1` (CI sets it) turns that into a failure.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{fixture, spawn_app};

fn node_ready() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let package = root
        .join("node_modules/socket.io-client-v2/package.json")
        .exists();
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if package && node {
        return true;
    }
    let message = "node or node_modules/socket.io-client-v2 is missing: run `npm ci`";
    assert!(
        std::env::var("COPILOT_REQUIRE_NODE").as_deref() != Ok("1"),
        "{message} (required because COPILOT_REQUIRE_NODE=1)"
    );
    eprintln!("\n!!!!! SKIPPED the Socket.IO protocol v4 test: {message} !!!!!\n");
    false
}

#[tokio::test]
async fn a_socket_io_v2_client_speaks_protocol_v4_with_the_server() {
    if !node_ready() {
        return;
    }
    let app = spawn_app().await;
    app.deliver(fixture("posthog-webhook-autocapture.json"))
        .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/socketio_v4_client.cjs");
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("node")
            .arg(script)
            .arg(&app.address)
            .arg("user_42")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node client finished in time")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node client failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "session_confirm");
    assert_eq!(
        events[0]["data"]["sent"], events[0]["data"]["received"],
        "id echoed"
    );
    assert_eq!(events[1]["event"], "bot_uttered");
    let text = events[1]["data"]["text"].as_str().unwrap();
    assert!(text.contains("'Save changes'"), "{text}");
}

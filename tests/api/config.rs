use std::process::Stdio;
use std::time::Duration;

use copilot_server::config::Settings;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_copilot-server"));
    command
        .env_remove("RUST_LOG")
        .env("COPILOT__DATABASE__URL", "sqlite::memory:")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn failed_start(command: &mut Command) -> String {
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("binary exits in time")
        .expect("binary runs");
    assert!(!output.status.success(), "start-up should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_bad_config_file_fails_start_up_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("wrong-type.toml", "[server]\nport = \"abc\"\n", "port"),
        (
            "unknown-key.toml",
            "[context]\nmax_acshuns = 3\n",
            "max_acshuns",
        ),
        (
            "invalid-value.toml",
            "[context]\nmax_actions = 0\n",
            "context.max_actions",
        ),
        ("broken.toml", "[server\nport = 1\n", "broken.toml"),
    ];
    for (name, text, key) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let stderr = failed_start(binary().arg("--config").arg(&path)).await;
        assert!(
            stderr.contains(key),
            "{name}: stderr should name {key:?}: {stderr}"
        );
        if name != "invalid-value.toml" {
            assert!(
                stderr.contains(name),
                "{name}: stderr should name the file: {stderr}"
            );
        }
    }
}

#[tokio::test]
async fn env_overrides_are_parsed_and_checked() {
    let stderr = failed_start(binary().env("COPILOT__SERVER__PORT", "not-a-port")).await;
    assert!(stderr.contains("server.port"), "{stderr}");
}

#[test]
fn the_seed_env_names_override_the_defaults() {
    let env = |name: &str| {
        match name {
            "OPENAI_API_KEY" => Some("sk-test"),
            "LLM_MODEL" => Some("gpt-4.1-mini"),
            "SUMMARY_THRESHOLD" => Some("7"),
            "LOOKBACK_SECONDS" => Some("120"),
            "MAX_ACTIONS" => Some("12"),
            _ => None,
        }
        .map(str::to_owned)
    };
    let settings = Settings::load_with_env(None, env).unwrap();
    assert_eq!(settings.llm.api_key, "sk-test");
    assert_eq!(settings.llm.model, "gpt-4.1-mini");
    assert_eq!(settings.context.summary_threshold, 7);
    assert_eq!(settings.context.lookback_seconds, 120.0);
    assert_eq!(settings.context.max_actions, 12);

    let defaults = Settings::load_with_env(None, |_| None).unwrap();
    assert_eq!(defaults.address().to_string(), "127.0.0.1:5005");
    assert_eq!(defaults.products[0].id, "demo");
}

/// Starts the binary on a free port, waits for its "listening" log line, checks
/// it serves, sends SIGTERM and expects a clean exit.
#[tokio::test]
async fn the_binary_warns_about_an_exposed_demo_secret_and_stops_on_sigterm() {
    let mut child = binary()
        .env("COPILOT__SERVER__HOST", "0.0.0.0")
        .env("COPILOT__SERVER__PORT", "0")
        .env("COPILOT__SERVER__LOG_FORMAT", "json")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut warned = false;
    let port = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            warned |= line.contains("public demo webhook secret");
            if line.contains("copilot-server listening") {
                let log: serde_json::Value = serde_json::from_str(&line).unwrap();
                return log["fields"]["port"].as_u64().unwrap();
            }
        }
        panic!("binary exited before listening");
    })
    .await
    .expect("binary starts in time");
    assert!(warned, "start-up warns about the demo secret off loopback");

    let health: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("binary stops in time")
        .unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

/// `[server] worker_threads` sizes the runtime: the binary runs exactly that
/// many `tokio-rt-worker` threads (read from /proc once it listens).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn worker_threads_sets_the_runtimes_size() {
    for workers in [1, 3] {
        let mut child = binary()
            .env("COPILOT__SERVER__PORT", "0")
            .env("COPILOT__SERVER__LOG_FORMAT", "json")
            .env("COPILOT__SERVER__WORKER_THREADS", workers.to_string())
            // Tokio names its blocking threads as its workers: keep the
            // knowledge reload (the one periodic blocking job) from adding one.
            .env("COPILOT__KNOWLEDGE__RELOAD_SECONDS", "0")
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("copilot-server listening") {
                    return;
                }
            }
            panic!("binary exited before listening");
        })
        .await
        .expect("binary starts in time");
        let tasks = format!("/proc/{}/task", child.id().unwrap());
        let running = std::fs::read_dir(tasks)
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "tokio-rt-worker")
            .count();
        assert_eq!(
            running, workers,
            "runtime workers with worker_threads = {workers}"
        );
        child.kill().await.unwrap();
    }
}

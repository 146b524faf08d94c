//! The server under test: started by us (a fresh one per mode) or given by `--target`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::sys;

/// Pid of the server we started, for the Ctrl-C handler.
pub static CHILD_PID: AtomicU32 = AtomicU32::new(0);

pub struct Server {
    pub base: String,
    pub pid: Option<u32>,
    child: Option<Child>,
    pub log: Option<PathBuf>,
    /// The database file we made for it (deleted at stop).
    database: Option<PathBuf>,
}

/// The baselines ingest is compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Parses the JSON body and answers 200: the limit of HTTP + JSON here.
    Plain,
    /// Also commits a row per event to SQLite before answering: the limit
    /// of a durable ingest here.
    DurableFloor,
}

/// How to start one.
pub struct Launch {
    pub bin: PathBuf,
    pub repo: PathBuf,
    pub database: crate::Database,
    /// `RUST_LOG` of the server (what logging costs is measured with it).
    pub log_filter: String,
    /// More environment for the server (the scale-out mode's `[store]`).
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// `copilot-server --version`.
    pub fn version(&self) -> String {
        std::process::Command::new(&self.bin)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Server {
    pub async fn start(launch: &Launch) -> anyhow::Result<Server> {
        if !launch.bin.is_file() {
            bail!(
                "server binary {} not found: build it first with \
                 `CARGO_TARGET_DIR=<same dir> cargo build --release -p copilot-server -p loadgen`, \
                 or pass --server-bin PATH (or --target URL for a running server)",
                launch.bin.display()
            );
        }
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("loadgen-server-{port}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let (database_url, database) = match launch.database {
            crate::Database::Memory => ("sqlite::memory:".to_owned(), None),
            crate::Database::File => {
                let dir = std::env::temp_dir().join(format!("loadgen-db-{port}"));
                let _ = std::fs::remove_dir_all(&dir);
                (format!("sqlite://{}/copilot.db", dir.display()), Some(dir))
            }
        };
        let child = Command::new(&launch.bin)
            .current_dir(&launch.repo)
            .env("COPILOT__SERVER__PORT", port.to_string())
            .env("COPILOT__SERVER__LOG_FORMAT", "json")
            .env("RUST_LOG", &launch.log_filter)
            // A benchmark measures capacity, not the abuse limits, and leaves
            // no database behind (the file is deleted at stop).
            .env("COPILOT__CHAT__MAX_MESSAGES_PER_MINUTE", "100000000")
            .env("COPILOT__DATABASE__URL", database_url)
            // Offline answers only: never call an LLM from a benchmark.
            .env_remove("OPENAI_API_KEY")
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", launch.bin.display()))?;
        let pid = child.id();
        CHILD_PID.store(pid.unwrap_or(0), Ordering::SeqCst);
        let mut server = Server {
            base: format!("http://127.0.0.1:{port}"),
            pid,
            child: Some(child),
            log: Some(log.clone()),
            database,
        };
        server.wait_healthy(&log).await?;
        Ok(server)
    }

    /// A baseline (`loadgen bare-server`), as its own process; the durable
    /// floor commits to a SQLite file of its own (deleted at stop).
    pub async fn start_bare(kind: Baseline) -> anyhow::Result<Server> {
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("loadgen-bare-{port}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["bare-server", "--port", &port.to_string()]);
        let database = if kind == Baseline::DurableFloor {
            let dir = std::env::temp_dir().join(format!("loadgen-floor-{port}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            command.arg("--durable").arg(dir.join("floor.db"));
            Some(dir)
        } else {
            None
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(out))
            .kill_on_drop(true)
            .spawn()
            .context("starting loadgen bare-server")?;
        let pid = child.id();
        let mut server = Server {
            base: format!("http://127.0.0.1:{port}"),
            pid,
            child: Some(child),
            log: Some(log.clone()),
            database,
        };
        server.wait_healthy(&log).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, log: &Path) -> anyhow::Result<()> {
        let server = self;
        let log = log.to_owned();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = server.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "server exited during start-up ({status}); log tail:\n{}",
                    log_tail(&log)
                );
            }
            if let Ok(resp) = http.get(format!("{}/healthz", server.base)).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                server.stop().await;
                bail!(
                    "server not healthy within 60 s; log tail:\n{}",
                    log_tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn attach(target: &str, pid: Option<u32>) -> Server {
        Server {
            base: target.trim_end_matches('/').to_owned(),
            pid,
            child: None,
            log: None,
            database: None,
        }
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(sys::rss_kib)
    }

    pub fn rss(&self) -> String {
        sys::mib(self.rss_kib())
    }

    pub fn cpu_secs(&self) -> Option<f64> {
        self.pid.and_then(sys::cpu_secs)
    }

    pub fn fds(&self) -> Option<usize> {
        self.pid.and_then(sys::fd_count)
    }

    pub fn threads(&self) -> Option<u64> {
        self.pid.and_then(sys::threads)
    }

    pub fn hwm_kib(&self) -> Option<u64> {
        self.pid.and_then(sys::hwm_kib)
    }

    /// SIGTERM, up to 5 s for a graceful stop, then SIGKILL. No-op for `--target`.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id()
            && let Ok(pid) = i32::try_from(pid)
        {
            // SAFETY: signalling the child process we spawned (pid from its handle).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        CHILD_PID.store(0, Ordering::SeqCst);
        if let Some(dir) = self.database.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Fetches a Prometheus gauge or counter (summing labelled series) from `/metrics`.
pub async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let bare = series.split('{').next().unwrap_or(series);
        if bare == name
            && let Ok(v) = value.parse::<f64>()
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// `GET /healthz` as JSON.
pub async fn healthz(http: &reqwest::Client, base: &str) -> Option<serde_json::Value> {
    http.get(format!("{base}/healthz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

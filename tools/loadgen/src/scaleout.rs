//! `loadgen scaleout`: webhook ingest on two instances that share a
//! redis-server (started here: a free port, a temp dir, no persistence),
//! beside one instance with the embedded durable store, in the same run.
//! Reports each instance's and the total rate, Redis commands per event
//! (from `INFO commandstats`) and where the CPU went.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::events::WebhookTemplate;
use crate::http::{self, LoadResult};
use crate::modes::{CpuMeter, accepted_one, load_row, load_table, webhook_request};
use crate::server::{Launch, Server};
use crate::stats::kv;
use crate::{Ctx, sys};

struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (apt install redis-server)")?;
        let redis = Self {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if redis
                .command("PING")
                .await
                .is_ok_and(|r| r.contains("PONG"))
            {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("redis-server did not answer PING");
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// One inline command, its whole reply as text.
    async fn command(&self, command: &str) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream
            .write_all(format!("{command}\r\nQUIT\r\n").as_bytes())
            .await?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await?;
        Ok(reply)
    }

    /// Calls per command since start (`cmdstat_evalsha:calls=…`).
    async fn calls(&self) -> anyhow::Result<HashMap<String, u64>> {
        let text = self.command("INFO commandstats").await?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect())
    }
}

fn on_redis(launch: &Launch, port: u16) -> Launch {
    Launch {
        bin: launch.bin.clone(),
        repo: launch.repo.clone(),
        database: launch.database,
        log_filter: launch.log_filter.clone(),
        env: vec![
            ("COPILOT__STORE__BACKEND".into(), "redis".into()),
            (
                "COPILOT__STORE__REDIS_URL".into(),
                format!("redis://127.0.0.1:{port}/0"),
            ),
            ("COPILOT__STORE__KEY_PREFIX".into(), "loadgen".into()),
        ],
    }
}

pub async fn scaleout(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let Some(launch) = &ctx.launch else {
        bail!("scaleout starts its own servers (no --target)");
    };
    println!(
        "## scaleout: POST /webhook/demo, one instance (embedded durable store) vs. two on one Redis ({} keep-alive connections in all, {} s after {} s warm-up)",
        cli.concurrency, cli.duration, cli.warmup
    );
    println!();
    let template = Arc::new(WebhookTemplate::load(&ctx.repo)?);
    let duration = Duration::from_secs(cli.duration);
    let warmup = Duration::from_secs(cli.warmup);

    // One instance, the embedded default.
    let mut single = Server::start(launch).await?;
    let http = http::client(cli.concurrency)?;
    let webhook = webhook_request(&single.base, template.clone(), cli.users, "user");
    http::closed_loop(&http, cli.concurrency, warmup, webhook.clone(), None).await;
    let meter = CpuMeter::start(&single);
    let alone = http::closed_loop(
        &http,
        cli.concurrency,
        duration,
        webhook,
        Some(accepted_one()),
    )
    .await;
    let alone_cpu = meter.stop();
    single.stop().await;

    // Two instances on Redis, half the connections each, at the same time.
    let redis = Redis::start().await?;
    let launch = on_redis(launch, redis.port);
    let mut a = Server::start(&launch).await?;
    let mut b = Server::start(&launch).await?;
    let half = (cli.concurrency / 2).max(1);
    let (ha, hb) = (http::client(half)?, http::client(half)?);
    let wa = webhook_request(&a.base, template.clone(), cli.users, "ua");
    let wb = webhook_request(&b.base, template, cli.users, "ub");
    tokio::join!(
        http::closed_loop(&ha, half, warmup, wa.clone(), None),
        http::closed_loop(&hb, half, warmup, wb.clone(), None),
    );
    let before = redis.calls().await?;
    let trips_before = round_trips(&ha, &a.base).await + round_trips(&hb, &b.base).await;
    let ingest_before = ops(&ha, &a.base, "ingest").await + ops(&hb, &b.base, "ingest").await;
    let redis_cpu = redis.pid().and_then(sys::cpu_secs);
    let (ma, mb) = (CpuMeter::start(&a), CpuMeter::start(&b));
    let (ra, rb): (LoadResult, LoadResult) = tokio::join!(
        http::closed_loop(&ha, half, duration, wa, Some(accepted_one())),
        http::closed_loop(&hb, half, duration, wb, Some(accepted_one())),
    );
    let (ca, cb) = (ma.stop(), mb.stop());
    let redis_cpu = redis
        .pid()
        .and_then(sys::cpu_secs)
        .zip(redis_cpu)
        .map(|(after, before)| after - before);
    let after = redis.calls().await?;
    let trips = round_trips(&ha, &a.base).await + round_trips(&hb, &b.base).await - trips_before;
    let ingest_trips =
        ops(&ha, &a.base, "ingest").await + ops(&hb, &b.base, "ingest").await - ingest_before;
    a.stop().await;
    b.stop().await;

    let mut t = load_table("instance");
    t.row(load_row("one instance, embedded store", &alone, &alone_cpu));
    t.row(load_row("A (Redis)", &ra, &ca));
    t.row(load_row("B (Redis)", &rb, &cb));
    t.print();

    let events = (ra.ok + rb.ok).max(1) as f64;
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let total = ra.rps() + rb.rps();
    let mut rows = vec![
        ("A req/s".to_owned(), format!("{:.0}", ra.rps())),
        ("B req/s".to_owned(), format!("{:.0}", rb.rps())),
        (
            "total req/s, two instances on Redis".to_owned(),
            format!("{total:.0}"),
        ),
        (
            "one instance, embedded store, req/s".to_owned(),
            format!("{:.0}", alone.rps()),
        ),
        (
            "total / one embedded instance".to_owned(),
            format!("{:.3}", total / alone.rps().max(1e-9)),
        ),
        (
            "Redis round trips per event, all of them (copilot_redis_round_trips_total, both instances)".to_owned(),
            format!("{:.3}", trips / events),
        ),
        (
            "of which the ingest script (one per request)".to_owned(),
            format!("{:.3}", ingest_trips / events),
        ),
        (
            "Redis XREAD per event (two replicas reading the log, batched)".to_owned(),
            format!("{:.3}", delta("xread") as f64 / events),
        ),
        (
            "target: <= 2 round trips per event".to_owned(),
            crate::modes::verdict(trips / events <= 2.0),
        ),
        (
            "redis-server CPU".to_owned(),
            redis_cpu.map_or("n/a".to_owned(), |s| {
                format!("{:.0}%", s / duration.as_secs_f64() * 100.0)
            }),
        ),
        ("A server CPU".to_owned(), ca.server_pct()),
        ("B server CPU".to_owned(), cb.server_pct()),
        ("loadgen CPU".to_owned(), ca.client_pct()),
    ];
    let mut commands: Vec<(String, u64)> = after
        .keys()
        .map(|k| (k.clone(), delta(k)))
        .filter(|(_, n)| *n > 0)
        .collect();
    commands.sort_by_key(|c| std::cmp::Reverse(c.1));
    rows.push((
        "Redis commands (incl. inside scripts)".to_owned(),
        commands
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    kv(
        "scaleout summary",
        rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
    );
    Ok(())
}

/// All Redis round trips an instance made (`copilot_redis_round_trips_total`).
async fn round_trips(http: &reqwest::Client, base: &str) -> f64 {
    crate::server::metric(http, base, "copilot_redis_round_trips_total")
        .await
        .unwrap_or(0.0)
}

/// Those for one purpose.
async fn ops(http: &reqwest::Client, base: &str, op: &str) -> f64 {
    let Ok(response) = http.get(format!("{base}/metrics")).send().await else {
        return 0.0;
    };
    let text = response.text().await.unwrap_or_default();
    let prefix = format!("copilot_redis_round_trips_total{{op=\"{op}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(0.0)
}

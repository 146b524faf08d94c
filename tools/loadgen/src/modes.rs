//! The five benchmarks. Each prints Markdown tables; each starts (and stops) a
//! fresh server unless `--target` is given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::join_all;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Barrier, Semaphore};

use crate::chat;
use crate::conns::Pool;
use crate::events::{self, LABELS, PATHS, WebhookTemplate, WebhookValues};
use crate::http::{self, CheckBody, LoadResult, MakeRequest};
use crate::server::{self, Baseline, Server};
use crate::stats::{Errors, Lat, Table, kv, slope};
use crate::{Ctx, sys};

const SECRET: &str = "demo-secret-change-me";

/// CPU seconds used by the server and by loadgen over a phase.
pub struct CpuMeter {
    machine: Option<f64>,
    irq: Option<f64>,
    server: Option<f64>,
    client: Option<f64>,
    pid: Option<u32>,
    start: Instant,
}

pub struct CpuUse {
    other_secs: Option<f64>,
    irq_secs: Option<f64>,
    server_secs: Option<f64>,
    client_secs: Option<f64>,
    wall: f64,
}

impl CpuMeter {
    pub fn start(server: &Server) -> Self {
        Self {
            machine: sys::machine_busy_secs(),
            irq: sys::machine_irq_secs(),
            server: server.cpu_secs(),
            client: sys::cpu_secs(sys::self_pid()),
            pid: server.pid,
            start: Instant::now(),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let server = self
            .pid
            .and_then(sys::cpu_secs)
            .zip(self.server)
            .map(|(b, a)| b - a);
        let client = sys::cpu_secs(sys::self_pid())
            .zip(self.client)
            .map(|(b, a)| b - a);
        // Busy time of everything else on the machine (e.g. other people's builds).
        let irq = sys::machine_irq_secs().zip(self.irq).map(|(b, a)| b - a);
        let other = sys::machine_busy_secs()
            .zip(self.machine)
            .map(|(b, a)| {
                b - a - server.unwrap_or(0.0) - client.unwrap_or(0.0) - irq.unwrap_or(0.0)
            })
            .map(|o| o.max(0.0));
        CpuUse {
            other_secs: other,
            irq_secs: irq,
            server_secs: server,
            client_secs: client,
            wall: self.start.elapsed().as_secs_f64(),
        }
    }
}

impl CpuUse {
    pub fn server_pct(&self) -> String {
        pct(self.server_secs, self.wall)
    }
    pub fn client_pct(&self) -> String {
        pct(self.client_secs, self.wall)
    }
    /// CPU used by other processes over the phase (100% = one core).
    pub fn other_pct(&self) -> String {
        pct(self.other_secs, self.wall)
    }
    /// Interrupt time (loopback TCP's softirqs) over the phase.
    pub fn irq_pct(&self) -> String {
        pct(self.irq_secs, self.wall)
    }
    /// Server CPU microseconds per operation.
    pub fn server_us_per(&self, ops: u64) -> String {
        per_op(self.server_secs, ops)
    }
    pub fn client_us_per(&self, ops: u64) -> String {
        per_op(self.client_secs, ops)
    }
}

fn pct(secs: Option<f64>, wall: f64) -> String {
    if wall < 0.5 {
        // /proc counts CPU in 10 ms ticks: meaningless over a very short phase.
        return format!("n/a (phase {:.0} ms)", wall * 1000.0);
    }
    secs.map_or("n/a".to_owned(), |s| {
        format!("{:.0}%", 100.0 * s / wall.max(1e-9))
    })
}

fn per_op(secs: Option<f64>, ops: u64) -> String {
    match secs {
        Some(s) if ops > 0 => format!("{:.0}", s * 1e6 / ops as f64),
        _ => "n/a".to_owned(),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("n/a".to_owned(), |v| v.to_string())
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

pub(crate) fn webhook_request(
    base: &str,
    template: Arc<WebhookTemplate>,
    users: usize,
    user_prefix: &'static str,
) -> Arc<MakeRequest> {
    let url = format!("{base}/webhook/demo");
    let ids: Arc<Vec<(String, String)>> = Arc::new(
        (0..users.max(1))
            .map(|i| (events::user_name(user_prefix, i), events::session_id(1, i)))
            .collect(),
    );
    Arc::new(move |http: &reqwest::Client, rng: &mut StdRng| {
        let (user, session) = &ids[rng.random_range(0..ids.len())];
        let body = template.render(&WebhookValues {
            user,
            session,
            label: LABELS[rng.random_range(0..LABELS.len())],
            path: PATHS[rng.random_range(0..PATHS.len())],
        });
        http.post(&url)
            .header("Content-Type", "application/json")
            .header("X-PostHog-Secret", SECRET)
            .body(body)
    })
}

pub(crate) fn accepted_one() -> Arc<CheckBody> {
    Arc::new(|body: &[u8]| body.windows(12).any(|w| w == b"\"accepted\":1"))
}

// ---------------------------------------------------------------- ingest

pub async fn ingest(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## ingest: POST /webhook/demo vs. GET /healthz, the durable floor and a bare axum server ({} keep-alive connections, {} s each after {} s warm-up)",
        cli.concurrency, cli.duration, cli.warmup
    );
    println!();
    let mut server = ctx.server().await?;
    let ours = ingest_run(ctx, &server).await;
    server.stop().await;
    let ours = ours?;
    let (floor, floor_cpu) = bare_run(ctx, Baseline::DurableFloor).await?;
    let (bare, bare_cpu) = bare_run(ctx, Baseline::Plain).await?;

    let mut t = load_table("endpoint");
    t.row(load_row(
        "POST /webhook/demo",
        &ours.ingest,
        &ours.ingest_cpu,
    ));
    t.row(load_row("GET /healthz", &ours.health, &ours.health_cpu));
    t.row(load_row(
        "durable floor: bare axum + SQLite group commit, 200",
        &floor,
        &floor_cpu,
    ));
    t.row(load_row(
        "bare axum: POST /webhook/demo, parse JSON, 200",
        &bare,
        &bare_cpu,
    ));
    t.print();
    let per = |a: &LoadResult, b: &LoadResult| {
        let r = a.rps() / b.rps().max(1e-9);
        (r, format!("{r:.3} ({:.0}%)", r * 100.0))
    };
    let (bare_ratio, bare_text) = per(&ours.ingest, &bare);
    let (ratio, health_text) = per(&ours.ingest, &ours.health);
    let mut rows = vec![
        ("ingest_rps / bare_axum_rps".to_owned(), bare_text),
        (
            "target: ingest >= 60% of the bare axum server".to_owned(),
            verdict(bare_ratio >= 0.6),
        ),
        (
            "durable_floor_rps / bare_axum_rps (what durability alone costs)".to_owned(),
            per(&floor, &bare).1,
        ),
        (
            "ingest_rps / durable_floor_rps".to_owned(),
            per(&ours.ingest, &floor).1,
        ),
        ("ingest_rps / healthz_rps".to_owned(), health_text),
        (
            "target: ingest >= 50% of /healthz".to_owned(),
            verdict(ratio >= 0.5),
        ),
    ];
    rows.extend(ours.notes);
    kv(
        "ingest summary",
        rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
    );
    Ok(())
}

/// The same webhook load on a baseline (started once ours has stopped, so
/// the two never share the cores).
async fn bare_run(ctx: &Ctx, kind: Baseline) -> anyhow::Result<(http::LoadResult, CpuUse)> {
    let cli = &ctx.cli;
    let mut bare = Server::start_bare(kind).await?;
    let template = Arc::new(WebhookTemplate::load(&ctx.repo)?);
    let http = http::client(cli.concurrency)?;
    let webhook = webhook_request(&bare.base, template, cli.users, "user");
    let warmup = Duration::from_secs(cli.warmup);
    if !warmup.is_zero() {
        http::closed_loop(&http, cli.concurrency, warmup, webhook.clone(), None).await;
    }
    // The floor answers as the server does, so its answers are checked too.
    let check = (kind == Baseline::DurableFloor).then(accepted_one);
    let meter = CpuMeter::start(&bare);
    let result = http::closed_loop(
        &http,
        cli.concurrency,
        Duration::from_secs(cli.duration),
        webhook,
        check,
    )
    .await;
    let cpu = meter.stop();
    bare.stop().await;
    Ok((result, cpu))
}

struct IngestOutcome {
    ingest: LoadResult,
    ingest_cpu: CpuUse,
    health: LoadResult,
    health_cpu: CpuUse,
    notes: Vec<(String, String)>,
}

async fn ingest_run(ctx: &Ctx, server: &Server) -> anyhow::Result<IngestOutcome> {
    let cli = &ctx.cli;
    let template = Arc::new(WebhookTemplate::load(&ctx.repo)?);
    let http = http::client(cli.concurrency)?;
    let duration = Duration::from_secs(cli.duration);
    let warmup = Duration::from_secs(cli.warmup);
    let rss_before = server.rss();

    let webhook = webhook_request(&server.base, template, cli.users, "user");
    if !warmup.is_zero() {
        http::closed_loop(&http, cli.concurrency, warmup, webhook.clone(), None).await;
    }
    let meter = CpuMeter::start(server);
    let ingest = http::closed_loop(
        &http,
        cli.concurrency,
        duration,
        webhook,
        Some(accepted_one()),
    )
    .await;
    let ingest_cpu = meter.stop();
    let rss_after_ingest = server.rss();

    let url = format!("{}/healthz", server.base);
    let health: Arc<MakeRequest> =
        Arc::new(move |http: &reqwest::Client, _: &mut StdRng| http.get(&url));
    if !warmup.is_zero() {
        http::closed_loop(&http, cli.concurrency, warmup, health.clone(), None).await;
    }
    let meter = CpuMeter::start(server);
    let health = http::closed_loop(&http, cli.concurrency, duration, health, None).await;
    let health_cpu = meter.stop();

    let events = server::metric(&http, &server.base, "copilot_events_total").await;
    let healthz = server::healthz(&http, &server.base).await;
    let notes = vec![
        (
            "events counted by the server (copilot_events_total, all outcomes)".to_owned(),
            opt(events),
        ),
        (
            "/healthz after".to_owned(),
            healthz.map_or("n/a".to_owned(), |h| h.to_string()),
        ),
        (
            "server RSS MiB before / after ingest".to_owned(),
            format!("{rss_before} / {rss_after_ingest}"),
        ),
        ("server RSS MiB at end".to_owned(), server.rss()),
    ];
    Ok(IngestOutcome {
        ingest,
        ingest_cpu,
        health,
        health_cpu,
        notes,
    })
}

/// The table of closed-loop HTTP phases, first column named `what`.
pub fn load_table(what: &str) -> Table {
    Table::new(&[
        what,
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "not accepted",
        "server CPU",
        "server CPU µs/req",
        "loadgen CPU",
        "kernel irq CPU",
        "other procs CPU",
    ])
}

/// One row of `load_table`.
pub fn load_row(name: &str, r: &LoadResult, c: &CpuUse) -> Vec<String> {
    vec![
        name.to_owned(),
        r.ok.to_string(),
        format!("{:.0}", r.rps()),
        r.lat.q_ms(0.50),
        r.lat.q_ms(0.99),
        r.lat.max_ms(),
        r.errors.summary(),
        r.not_accepted.to_string(),
        c.server_pct(),
        c.server_us_per(r.ok),
        c.client_pct(),
        c.irq_pct(),
        c.other_pct(),
    ]
}

pub fn verdict(met: bool) -> String {
    if met {
        "MET".to_owned()
    } else {
        "MISSED".to_owned()
    }
}

// ---------------------------------------------------------------- chat

pub async fn chat(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## chat: {} Socket.IO clients connected, {} active × {} messages \"{}\" (one at a time)",
        cli.clients,
        cli.active,
        cli.messages,
        chat::MESSAGE
    );
    println!();
    let mut server = ctx.server().await?;
    let result = chat_run(ctx, &server).await;
    server.stop().await;
    result
}

/// One webhook event per user so "what did I just do?" has an answer grounded in activity.
async fn seed_activity(
    http: &reqwest::Client,
    base: &str,
    template: &WebhookTemplate,
    users: &[String],
) -> anyhow::Result<()> {
    let url = format!("{base}/webhook/demo");
    for chunk in users.chunks(32) {
        let futs = chunk.iter().enumerate().map(|(i, user)| {
            let body = template.render(&WebhookValues {
                user,
                session: &events::session_id(2, i),
                label: "Export CSV",
                path: "/reports/weekly",
            });
            http.post(&url)
                .header("Content-Type", "application/json")
                .header("X-PostHog-Secret", SECRET)
                .body(body)
                .send()
        });
        for r in join_all(futs).await {
            let r = r.context("seeding activity")?;
            anyhow::ensure!(
                r.status().is_success(),
                "seeding activity: HTTP {}",
                r.status()
            );
        }
    }
    Ok(())
}

async fn chat_run(ctx: &Ctx, server: &Server) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let http = http::client(8)?;
    let template = WebhookTemplate::load(&ctx.repo)?;
    let active = cli.active.min(cli.clients);
    let users: Vec<String> = (0..active)
        .map(|i| events::user_name("chat_user", i))
        .collect();
    seed_activity(&http, &server.base, &template, &users).await?;

    let rss_before = server.rss();
    let (clients, connect_errors, connect_time) =
        chat::connect_many(&server.base, cli.clients, cli.batch, |k| {
            (
                events::user_name("chat_user", k),
                uuid::Uuid::new_v4().simple().to_string(),
            )
        })
        .await;
    let connected = clients.len();
    let retried = clients.iter().filter(|c| c.session_request_retried).count();
    let rss_connected = server.rss();
    let server_sockets = server::metric(&http, &server.base, "copilot_sockets_connected").await;
    let mut clients = clients;
    let idle = clients.split_off(active.min(connected));
    let actives = clients;
    let n_active = actives.len();

    // Warm up (two turns each: the first greets), then all start together.
    let barrier = Arc::new(Barrier::new(n_active + 1));
    let messages = cli.messages;
    let think = Duration::from_millis(cli.think_ms);
    if cli.think_ms > 0 {
        println!(
            "(each active client pauses 0.5–1.5 × {} ms (uniform) between a reply and its next message, staggered start: at most {:.0} turns/s offered)",
            cli.think_ms,
            active as f64 * 1000.0 / cli.think_ms as f64
        );
        println!();
    }
    let mut handles = Vec::with_capacity(n_active);
    for mut c in actives {
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            let mut first = Lat::new();
            let mut full = Lat::new();
            let mut errors = Errors::default();
            let warm = match c.warm_up().await {
                Ok(()) => c.warm_up().await,
                Err(e) => Err(e),
            };
            barrier.wait().await;
            if let Err(e) = warm {
                errors.add(format!("warm-up: {e}"));
            } else {
                let mut rng = StdRng::from_os_rng();
                if !think.is_zero() {
                    // Stagger the start so clients do not send in lockstep.
                    tokio::time::sleep(think.mul_f64(rng.random_range(0.0..1.0))).await;
                }
                for i in 0..messages {
                    if i > 0 && !think.is_zero() {
                        // Uniform 0.5–1.5 × think: arrivals spread out, mean rate kept.
                        tokio::time::sleep(think.mul_f64(rng.random_range(0.5..1.5))).await;
                    }
                    match c.turn(chat::MESSAGE).await {
                        Ok((f, l)) => {
                            first.record(f);
                            full.record(l);
                        }
                        Err(e) => {
                            errors.add(e);
                            break;
                        }
                    }
                }
            }
            (c, first, full, errors)
        }));
    }
    barrier.wait().await;
    let meter = CpuMeter::start(server);
    let mut first = Lat::new();
    let mut full = Lat::new();
    let mut errors = Errors::default();
    let mut back = Vec::with_capacity(connected);
    let mut replies_per_turn = Vec::new();
    let mut offers = 0;
    for h in handles {
        match h.await {
            Ok((c, f, l, e)) => {
                first.merge(&f);
                full.merge(&l);
                errors.merge(&e);
                replies_per_turn.push(c.replies_per_turn);
                offers += c.offers;
                back.push(c);
            }
            Err(_) => errors.add("client task panicked"),
        }
    }
    let cpu = meter.stop();
    let turns = first.count();
    let rss_after = server.rss();
    let still = server::metric(&http, &server.base, "copilot_sockets_connected").await;
    back.extend(idle);

    let mut t = Table::new(&[
        "clients connected",
        "active",
        "turns",
        "errors",
        "turns/s",
        "first reply p50 ms",
        "p99 ms",
        "max ms",
        "full reply p50 ms",
        "p99 ms",
        "max ms",
    ]);
    t.row(vec![
        format!("{connected}/{}", cli.clients),
        n_active.to_string(),
        turns.to_string(),
        errors.summary(),
        format!("{:.0}", turns as f64 / cpu.wall.max(1e-9)),
        first.q_ms(0.50),
        first.q_ms(0.99),
        first.max_ms(),
        full.q_ms(0.50),
        full.q_ms(0.99),
        full.max_ms(),
    ]);
    t.print();
    replies_per_turn.sort_unstable();
    replies_per_turn.dedup();
    let p99_ok = first.p99_us().is_some_and(|p| p < 2000) && connected >= 1000;
    kv(
        "chat details",
        vec![
            (
                "connect + session_confirm time for all clients",
                format!(
                    "{:.2} s (batches of {})",
                    connect_time.as_secs_f64(),
                    cli.batch
                ),
            ),
            ("connect failures", connect_errors.summary()),
            (
                "session_request lost by the server (no session_confirm in 3 s; re-sent)",
                retried.to_string(),
            ),
            (
                "server's copilot_sockets_connected during / after turns",
                format!("{} / {}", opt(server_sockets), opt(still)),
            ),
            (
                "bot_uttered messages per turn",
                format!("{replies_per_turn:?}"),
            ),
            ("proactive offers received (ignored)", offers.to_string()),
            ("mean first-reply latency ms", first.mean_ms()),
            (
                "server CPU during turns (µs/turn)",
                format!("{} ({})", cpu.server_pct(), cpu.server_us_per(turns)),
            ),
            (
                "loadgen CPU during turns (µs/turn)",
                format!("{} ({})", cpu.client_pct(), cpu.client_us_per(turns)),
            ),
            (
                "kernel irq/softirq CPU (loopback TCP) during turns",
                cpu.irq_pct(),
            ),
            ("other processes' CPU during turns", cpu.other_pct()),
            (
                "server RSS MiB: before / connected / after turns",
                format!("{rss_before} / {rss_connected} / {rss_after}"),
            ),
            (
                "target: chat p99 < 2 ms at 1,000 connected",
                format!(
                    "{} (p99 first reply {} ms with {connected} connected)",
                    verdict(p99_ok),
                    first.q_ms(0.99)
                ),
            ),
        ],
    );
    let connected_now = back.len();
    latency_breakdown(server, &mut back, connected_now).await?;
    chat::disconnect_all(back).await;
    Ok(())
}

const PROBES: usize = 300;

/// Sequential probes (one request at a time, nothing else running) that split a
/// chat turn's latency: HTTP round trip, NLU, the whole copilot over HTTP, and a
/// Socket.IO turn from one client while all the others stay connected.
async fn latency_breakdown(
    server: &Server,
    clients: &mut [chat::ChatClient],
    connected: usize,
) -> anyhow::Result<()> {
    let http = http::client(1)?;
    let base = &server.base;
    let mut rows: Vec<(String, Lat, Errors)> = Vec::new();
    let user = events::user_name("chat_user", 0);
    type Probe<'a> = (&'a str, Box<dyn Fn() -> reqwest::RequestBuilder + 'a>);
    let probes: Vec<Probe> = vec![
        (
            "GET /healthz (HTTP round trip floor)",
            Box::new(|| http.get(format!("{base}/healthz"))),
        ),
        (
            "POST /model/parse (NLU only)",
            Box::new(|| {
                http.post(format!("{base}/model/parse"))
                    .json(&serde_json::json!({ "text": chat::MESSAGE }))
            }),
        ),
        (
            "POST /webhooks/rest/webhook (whole copilot turn over HTTP)",
            Box::new(|| {
                http.post(format!("{base}/webhooks/rest/webhook")).json(&serde_json::json!({
                    "sender": "rest_probe", "message": chat::MESSAGE, "metadata": { "userId": user }
                }))
            }),
        ),
    ];
    for (name, make) in probes {
        let mut lat = Lat::new();
        let mut errors = Errors::default();
        for i in 0..PROBES + 20 {
            let t0 = Instant::now();
            match make().send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    if i >= 20 {
                        lat.record(t0.elapsed());
                    }
                }
                Ok(r) => errors.add(format!("HTTP {}", r.status().as_u16())),
                Err(e) => errors.add(http::classify(&e)),
            }
        }
        rows.push((name.to_owned(), lat, errors));
    }
    if let Some(c) = clients.first_mut() {
        let mut lat = Lat::new();
        let mut errors = Errors::default();
        for _ in 0..PROBES {
            match c.turn(chat::MESSAGE).await {
                Ok((first, _)) => lat.record(first),
                Err(e) => {
                    errors.add(e);
                    break;
                }
            }
        }
        rows.push((
            format!("Socket.IO turn, 1 client active ({connected} connected)"),
            lat,
            errors,
        ));
    }
    println!("latency breakdown: {PROBES} sequential requests each, one at a time (unloaded)");
    println!();
    let mut t = Table::new(&[
        "probe", "n", "p50 ms", "p99 ms", "max ms", "mean ms", "errors",
    ]);
    for (name, lat, errors) in rows {
        t.row(vec![
            name,
            lat.count().to_string(),
            lat.q_ms(0.5),
            lat.q_ms(0.99),
            lat.max_ms(),
            lat.mean_ms(),
            errors.summary(),
        ]);
    }
    t.print();
    Ok(())
}

// ---------------------------------------------------------------- connections

pub async fn connections(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## connections: {} idle Socket.IO sockets (raw Engine.IO v4 websocket client), held {} s",
        cli.connections, cli.hold
    );
    println!();
    let mut server = ctx.server().await?;
    let result = connections_run(ctx, &server).await;
    server.stop().await;
    result
}

async fn connections_run(ctx: &Ctx, server: &Server) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let http = http::client(2)?;
    let rss0 = server.rss_kib();
    let fds0 = server.fds();
    let me0 = sys::rss_kib(sys::self_pid());
    let mut pool = Pool::new();
    let meter = CpuMeter::start(server);
    let (errors, took) = pool.open(&server.base, cli.connections, cli.batch).await;
    let cpu = meter.stop();
    let counters = pool.counters.clone();
    let live1 = counters.live.load(Ordering::SeqCst);
    let rss1 = server.rss_kib();
    let fds1 = server.fds();
    let me1 = sys::rss_kib(sys::self_pid());
    let server_sockets1 = server::metric(&http, &server.base, "copilot_sockets_connected").await;
    let threads = server.threads();

    let mut min_live = live1;
    let hold_start = Instant::now();
    let hold = Duration::from_secs(cli.hold);
    while hold_start.elapsed() < hold {
        let left = hold.saturating_sub(hold_start.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(5))).await;
        min_live = min_live.min(counters.live.load(Ordering::SeqCst));
    }
    let live2 = counters.live.load(Ordering::SeqCst);
    let rss2 = server.rss_kib();
    let server_sockets2 = server::metric(&http, &server.base, "copilot_sockets_connected").await;
    let health_ok = server::healthz(&http, &server.base).await.is_some();
    let pongs = counters.pongs.load(Ordering::SeqCst);
    let dropped = counters.dropped.load(Ordering::SeqCst);

    pool.close().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss3 = server.rss_kib();
    let server_sockets3 = server::metric(&http, &server.base, "copilot_sockets_connected").await;

    let mut t = Table::new(&[
        "attempted",
        "connected after all attempts",
        "failed",
        "open time s",
        "connects/s",
        "still open after hold",
        "server RSS MiB before",
        "with sockets",
        "after hold",
        "after close",
    ]);
    t.row(vec![
        cli.connections.to_string(),
        live1.to_string(),
        errors.total().to_string(),
        format!("{:.2}", took.as_secs_f64()),
        format!("{:.0}", live1 as f64 / took.as_secs_f64().max(1e-9)),
        live2.to_string(),
        sys::mib(rss0),
        sys::mib(rss1),
        sys::mib(rss2),
        sys::mib(rss3),
    ]);
    t.print();
    let per_socket = match (rss0, rss1) {
        (Some(a), Some(b)) if live1 > 0 => {
            format!("{:.1}", (b.saturating_sub(a)) as f64 / live1 as f64)
        }
        _ => "n/a".to_owned(),
    };
    kv(
        "connection details",
        vec![
            ("failures by kind", errors.summary()),
            (
                "server's copilot_sockets_connected: open / after hold / after close",
                format!(
                    "{} / {} / {}",
                    opt(server_sockets1),
                    opt(server_sockets2),
                    opt(server_sockets3)
                ),
            ),
            ("fewest open during hold", min_live.to_string()),
            ("closed by the server during hold", dropped.to_string()),
            ("pings answered during hold", pongs.to_string()),
            ("/healthz answers with sockets open", health_ok.to_string()),
            ("server RSS per socket KiB", per_socket),
            (
                "server fds before / with sockets",
                format!("{} / {}", opt(fds0), opt(fds1)),
            ),
            ("server threads", opt(threads)),
            (
                "server CPU while opening (µs/socket)",
                format!("{} ({})", cpu.server_pct(), cpu.server_us_per(live1)),
            ),
            ("loadgen CPU while opening", cpu.client_pct()),
            (
                "kernel irq/softirq CPU (loopback TCP) while opening",
                cpu.irq_pct(),
            ),
            ("other processes' CPU while opening", cpu.other_pct()),
            (
                "loadgen RSS MiB before / with sockets",
                format!("{} / {}", sys::mib(me0), sys::mib(me1)),
            ),
            (
                "target: 10,000 idle sockets held",
                format!(
                    "{} ({live2} of {} open after {} s)",
                    verdict(live2 >= 10_000 && live2 as usize >= cli.connections),
                    cli.connections,
                    cli.hold
                ),
            ),
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------- memory

pub async fn memory(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## memory: {} sessions × {} actions via webhook batches ({} connections)",
        cli.sessions, cli.actions, cli.concurrency
    );
    println!();
    let mut server = ctx.server().await?;
    let result = memory_run(ctx, &server).await;
    server.stop().await;
    result
}

#[derive(Default)]
struct Fill {
    requests: u64,
    accepted: u64,
    ignored: u64,
    duplicates: u64,
    errors: Errors,
    lat: Lat,
}

async fn memory_run(ctx: &Ctx, server: &Server) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let http = http::client(cli.concurrency)?;
    let h0 = server::healthz(&http, &server.base).await;
    let rss0 = server.rss_kib();
    let next = Arc::new(AtomicUsize::new(0));
    let sessions = cli.sessions;
    let actions = cli.actions;
    let url = Arc::new(format!("{}/webhook/demo", server.base));
    let meter = CpuMeter::start(server);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..cli.concurrency.max(1) {
        let next = next.clone();
        let http = http.clone();
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let mut f = Fill::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sessions {
                    break;
                }
                let user = events::user_name("mem_user", i);
                let body = events::session_batch(&user, &events::session_id(3, i), actions, i);
                let t0 = Instant::now();
                let resp = http
                    .post(url.as_str())
                    .header("Content-Type", "application/json")
                    .header("X-PostHog-Secret", SECRET)
                    .body(body)
                    .send()
                    .await;
                match resp {
                    Ok(r) => {
                        let status = r.status();
                        let v: Option<serde_json::Value> = r.json().await.ok();
                        f.lat.record(t0.elapsed());
                        f.requests += 1;
                        if status.is_success() {
                            let n = |k: &str| v.as_ref().and_then(|v| v[k].as_u64()).unwrap_or(0);
                            f.accepted += n("accepted");
                            f.ignored += n("ignored");
                            f.duplicates += n("duplicates");
                        } else {
                            f.errors.add(format!("HTTP {}", status.as_u16()));
                        }
                    }
                    Err(e) => f.errors.add(http::classify(&e)),
                }
            }
            f
        }));
    }
    let mut fill = Fill::default();
    for h in handles {
        if let Ok(f) = h.await {
            fill.requests += f.requests;
            fill.accepted += f.accepted;
            fill.ignored += f.ignored;
            fill.duplicates += f.duplicates;
            fill.errors.merge(&f.errors);
            fill.lat.merge(&f.lat);
        }
    }
    let took = start.elapsed();
    let cpu = meter.stop();
    let rss1 = server.rss_kib();
    let h1 = server::healthz(&http, &server.base).await;
    let idle_meter = CpuMeter::start(server);
    tokio::time::sleep(Duration::from_secs(cli.settle)).await;
    let idle = idle_meter.stop();
    let rss2 = server.rss_kib();
    let hwm = server.hwm_kib();
    let h2 = server::healthz(&http, &server.base).await;
    let store_sessions = server::metric(&http, &server.base, "copilot_store_sessions").await;
    let context = http
        .get(format!(
            "{}/context/{}",
            server.base,
            events::user_name("mem_user", 0)
        ))
        // The demo product's public key (config/default.toml).
        .bearer_auth("demo-api-key-change-me")
        .send()
        .await
        .ok();
    let context = match context {
        Some(r) => r.text().await.unwrap_or_default(),
        None => String::new(),
    };
    let field = |h: &Option<serde_json::Value>, k: &str| {
        h.as_ref()
            .and_then(|h| h[k].as_u64())
            .map_or("n/a".to_owned(), |n| n.to_string())
    };

    let mut t = Table::new(&[
        "sessions × actions",
        "requests",
        "events accepted",
        "errors",
        "fill time s",
        "events/s",
        "batch p50 ms",
        "p99 ms",
        "sessions_tracked",
        "users_tracked",
        "RSS MiB before",
        "after fill",
        &format!("after {} s settle", cli.settle),
        "peak (VmHWM)",
    ]);
    t.row(vec![
        format!("{sessions} × {actions}"),
        fill.requests.to_string(),
        fill.accepted.to_string(),
        fill.errors.summary(),
        format!("{:.2}", took.as_secs_f64()),
        format!("{:.0}", fill.accepted as f64 / took.as_secs_f64().max(1e-9)),
        fill.lat.q_ms(0.5),
        fill.lat.q_ms(0.99),
        field(&h2, "sessions_tracked"),
        field(&h2, "users_tracked"),
        sys::mib(rss0),
        sys::mib(rss1),
        sys::mib(rss2),
        sys::mib(hwm),
    ]);
    t.print();
    let tracked = h2
        .as_ref()
        .and_then(|h| h["sessions_tracked"].as_u64())
        .unwrap_or(0);
    let per_session = match (rss0, rss2) {
        (Some(a), Some(b)) if tracked > 0 => {
            format!("{:.2}", b.saturating_sub(a) as f64 / tracked as f64)
        }
        _ => "n/a".to_owned(),
    };
    // 150 MB = 150,000,000 bytes (143 MiB), the stricter reading.
    let met = rss2.is_some_and(|k| k * 1024 <= 150_000_000) && tracked >= 10_000;
    kv(
        "memory details",
        vec![
            (
                "/healthz before / right after / after settle",
                format!(
                    "{} / {} / {}",
                    h0.map_or("n/a".to_owned(), |h| h.to_string()),
                    h1.map_or("n/a".to_owned(), |h| h.to_string()),
                    h2.map_or("n/a".to_owned(), |h| h.to_string())
                ),
            ),
            ("copilot_store_sessions", opt(store_sessions)),
            (
                "ignored / duplicates",
                format!("{} / {}", fill.ignored, fill.duplicates),
            ),
            (
                "RSS growth per tracked session KiB (after settle)",
                per_session,
            ),
            (
                "server CPU during fill (µs/event)",
                format!(
                    "{} ({})",
                    cpu.server_pct(),
                    cpu.server_us_per(fill.accepted)
                ),
            ),
            ("loadgen CPU during fill", cpu.client_pct()),
            (
                "server CPU while idle during the settle (background work: proactive ticks, cache upkeep)",
                idle.server_pct(),
            ),
            (
                "kernel irq/softirq CPU (loopback TCP) during fill",
                cpu.irq_pct(),
            ),
            ("other processes' CPU during fill", cpu.other_pct()),
            (
                "GET /context/mem_user_0: lines / bytes",
                format!("{} / {}", context.lines().count(), context.len()),
            ),
            (
                "target: <= 150 MB RSS for the 10,000-session store",
                format!(
                    "{} ({} MiB = {} MB after settle, {tracked} sessions tracked)",
                    if tracked < 10_000 {
                        "NOT TESTED (fewer than 10,000 sessions)".to_owned()
                    } else {
                        verdict(met)
                    },
                    sys::mib(rss2),
                    rss2.map_or("n/a".to_owned(), |k| format!(
                        "{:.1}",
                        k as f64 * 1024.0 / 1e6
                    ))
                ),
            ),
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------- soak

#[derive(Default)]
struct Window {
    ingest_ok: u64,
    ingest_err: Errors,
    ingest_lat: Lat,
    skipped: u64,
    chat_ok: u64,
    chat_err: Errors,
    chat_lat: Lat,
}

impl Window {
    fn ingest(&mut self, r: Result<Duration, String>) {
        match r {
            Ok(d) => {
                self.ingest_ok += 1;
                self.ingest_lat.record(d);
            }
            Err(e) => self.ingest_err.add(e),
        }
    }
    fn chat(&mut self, r: &Result<(Duration, Duration), String>) {
        match r {
            Ok((first, _)) => {
                self.chat_ok += 1;
                self.chat_lat.record(*first);
            }
            Err(e) => self.chat_err.add(e.clone()),
        }
    }
}

#[derive(Default)]
struct SoakStats {
    window: Window,
    total: Window,
}

pub async fn soak(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## soak: {} min of {} webhook req/s + {} chat turns/s over {} Socket.IO clients; RSS every {} s",
        cli.minutes, cli.soak_ingest_rps, cli.soak_chat_rps, cli.soak_clients, cli.sample_every
    );
    println!();
    let mut server = ctx.server().await?;
    let result = soak_run(ctx, &server).await;
    server.stop().await;
    result
}

async fn soak_run(ctx: &Ctx, server: &Server) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let http = http::client(64)?;
    let template = Arc::new(WebhookTemplate::load(&ctx.repo)?);
    let users = cli.users.max(cli.soak_clients).max(1);
    let rss_start = server.rss();
    // Chat users are among the ingest users, so answers (and offers) are grounded.
    let (clients, connect_errors, _) =
        chat::connect_many(&server.base, cli.soak_clients, cli.batch, |k| {
            (
                events::user_name("user", k),
                uuid::Uuid::new_v4().simple().to_string(),
            )
        })
        .await;
    let retried = clients.iter().filter(|c| c.session_request_retried).count();
    let mut ready = Vec::with_capacity(clients.len());
    let mut warm_errors = Errors::default();
    for (c, r) in join_all(clients.into_iter().map(|mut c| async move {
        let r = c.warm_up().await;
        (c, r)
    }))
    .await
    {
        match r {
            Ok(()) => ready.push(c),
            Err(e) => {
                warm_errors.add(e);
                c.disconnect().await;
            }
        }
    }

    let stats = Arc::new(Mutex::new(SoakStats::default()));
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs_f64(cli.minutes.max(0.0) * 60.0);

    // Ingest at a fixed rate, at most 256 requests in flight (beyond: skipped, counted).
    let ingest = {
        let make = webhook_request(&server.base, template, users, "user");
        let http = http.clone();
        let stats = stats.clone();
        let rate = cli.soak_ingest_rps.max(0.1);
        tokio::spawn(async move {
            let inflight = Arc::new(Semaphore::new(256));
            let mut rng = StdRng::from_os_rng();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = tick.tick() => {}
                }
                let Ok(permit) = inflight.clone().try_acquire_owned() else {
                    if let Ok(mut s) = stats.lock() {
                        s.window.skipped += 1;
                        s.total.skipped += 1;
                    }
                    continue;
                };
                let req = make(&http, &mut rng);
                let stats = stats.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = match req.send().await {
                        Ok(resp) if resp.status().is_success() => {
                            let _ = resp.bytes().await;
                            Ok(t0.elapsed())
                        }
                        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
                        Err(e) => Err(http::classify(&e)),
                    };
                    drop(permit);
                    if let Ok(mut s) = stats.lock() {
                        s.window.ingest(r.clone());
                        s.total.ingest(r);
                    }
                });
            }
            // Let the last requests finish.
            let _ = tokio::time::timeout(Duration::from_secs(30), inflight.acquire_many(256)).await;
        })
    };

    // Chat: each client sends every clients/rate seconds, staggered.
    let n = ready.len().max(1);
    let period = Duration::from_secs_f64(n as f64 / cli.soak_chat_rps.max(0.01));
    let mut chatters = Vec::with_capacity(ready.len());
    for (k, mut c) in ready.into_iter().enumerate() {
        let stats = stats.clone();
        let mut next = start + period.mul_f64(k as f64 / n as f64);
        chatters.push(tokio::spawn(async move {
            loop {
                if next >= deadline {
                    break;
                }
                tokio::time::sleep_until(next).await;
                let r = c.turn(chat::MESSAGE).await;
                if let Ok(mut s) = stats.lock() {
                    s.window.chat(&r);
                    s.total.chat(&r);
                }
                next += period;
                if r.is_err() {
                    // Resynchronise after a lost reply rather than counting a stale one.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            c
        }));
    }

    // Sample RSS every `sample_every` seconds.
    let mut samples: Vec<Vec<String>> = Vec::new();
    let mut points: Vec<(f64, f64)> = Vec::new();
    let every = Duration::from_secs(cli.sample_every.max(1));
    let mut next_sample = start;
    let mut last_cpu = server.cpu_secs();
    let mut last_t = start;
    eprintln!(
        "soak: started, {} clients chatting, ends in {:.1} min",
        n, cli.minutes
    );
    loop {
        let now = tokio::time::Instant::now();
        let t = now.duration_since(start).as_secs_f64();
        let w = stats
            .lock()
            .map(|mut s| std::mem::take(&mut s.window))
            .unwrap_or_default();
        let cpu = server.cpu_secs();
        let dt = now.duration_since(last_t).as_secs_f64();
        let cpu_pct = match (cpu, last_cpu) {
            (Some(b), Some(a)) if dt > 0.0 => format!("{:.0}%", 100.0 * (b - a) / dt),
            _ => "-".to_owned(),
        };
        last_cpu = cpu;
        last_t = now;
        let rss = server.rss_kib();
        if let Some(k) = rss {
            points.push((t / 60.0, k as f64 / 1024.0));
        }
        let row = vec![
            format!("{t:.0}"),
            sys::mib(rss),
            cpu_pct,
            if dt >= 1.0 {
                format!("{:.0}", w.ingest_ok as f64 / dt)
            } else {
                "-".to_owned()
            },
            w.ingest_lat.q_ms(0.99),
            if dt >= 1.0 {
                format!("{:.1}", w.chat_ok as f64 / dt)
            } else {
                "-".to_owned()
            },
            w.chat_lat.q_ms(0.99),
            (w.ingest_err.total() + w.chat_err.total() + w.skipped).to_string(),
        ];
        eprintln!("soak: {}", row.join("  "));
        samples.push(row);
        if now >= deadline {
            break;
        }
        next_sample += every;
        tokio::time::sleep_until(next_sample.min(deadline)).await;
    }
    let _ = ingest.await;
    let mut back = Vec::new();
    for h in chatters {
        if let Ok(c) = h.await {
            back.push(c);
        }
    }
    let total = stats
        .lock()
        .map(|mut s| std::mem::take(&mut s.total))
        .unwrap_or_default();
    let elapsed = start.elapsed().as_secs_f64();

    let mut t = Table::new(&[
        "t s",
        "RSS MiB",
        "server CPU",
        "ingest req/s",
        "ingest p99 ms",
        "chat turns/s",
        "chat p99 ms",
        "errors+skipped",
    ]);
    for s in samples {
        t.row(s);
    }
    println!("RSS samples (each row covers the interval since the previous one)");
    println!();
    t.print();
    let half: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(m, _)| *m >= cli.minutes / 2.0)
        .collect();
    let quarter: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(m, _)| *m >= cli.minutes * 0.75)
        .collect();
    let mb = |s: Option<f64>| s.map_or("n/a".to_owned(), |v| format!("{v:+.3} MiB/min"));
    let mut offers = 0;
    for c in &back {
        offers += c.offers;
    }
    kv(
        "soak summary",
        vec![
            ("duration", format!("{:.1} min", elapsed / 60.0)),
            (
                "RSS MiB at start (before clients) / first sample / last sample",
                format!(
                    "{rss_start} / {} / {}",
                    points.first().map_or("n/a".to_owned(), |p| f1(p.1)),
                    points.last().map_or("n/a".to_owned(), |p| f1(p.1))
                ),
            ),
            ("RSS slope, whole run (least squares)", mb(slope(&points))),
            ("RSS slope, second half", mb(slope(&half))),
            ("RSS slope, last quarter", mb(slope(&quarter))),
            (
                "webhook requests ok / errors / skipped",
                format!(
                    "{} / {} / {}",
                    total.ingest_ok,
                    total.ingest_err.summary(),
                    total.skipped
                ),
            ),
            (
                "webhook latency p50 / p99 / max ms",
                format!(
                    "{} / {} / {}",
                    total.ingest_lat.q_ms(0.5),
                    total.ingest_lat.q_ms(0.99),
                    total.ingest_lat.max_ms()
                ),
            ),
            (
                "chat turns ok / errors",
                format!("{} / {}", total.chat_ok, total.chat_err.summary()),
            ),
            (
                "chat first-reply p50 / p99 / max ms",
                format!(
                    "{} / {} / {}",
                    total.chat_lat.q_ms(0.5),
                    total.chat_lat.q_ms(0.99),
                    total.chat_lat.max_ms()
                ),
            ),
            (
                "chat clients connected / connect failures / warm-up failures",
                format!(
                    "{} / {} / {}",
                    back.len(),
                    connect_errors.summary(),
                    warm_errors.summary()
                ),
            ),
            (
                "proactive offers received by chat clients",
                offers.to_string(),
            ),
            (
                "session_request lost by the server (re-sent)",
                retried.to_string(),
            ),
        ],
    );
    chat::disconnect_all(back).await;
    Ok(())
}

//! `stream`: webhook ingest (closed loop) on the demo product, first with no
//! stream subscribers, then with S of them reading `GET /stream/demo`. Reports
//! the ingest rate of both, the frames per second delivered, and the delivery
//! lag: from the event's timestamp (set when loadgen builds the request, in
//! microseconds) to the moment a subscriber reads the frame that carries it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::rngs::StdRng;
use tokio::sync::Mutex;

use crate::Ctx;
use crate::http::{self, CheckBody, LoadResult, MakeRequest};
use crate::modes::{CpuMeter, CpuUse, load_row, load_table, verdict};
use crate::server::{self, Server};
use crate::stats::{Lat, kv};

const SECRET: &str = "demo-secret-change-me";
const STREAM_KEY: &str = "demo-stream-key-change-me";

pub async fn stream(ctx: &Ctx) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    println!(
        "## stream: POST /webhook/demo ({} keep-alive connections, {} s) without and with {} SSE subscribers on GET /stream/demo",
        cli.concurrency, cli.duration, cli.subscribers
    );
    println!();
    let mut server = ctx.server().await?;
    let result = run(ctx, &server).await;
    server.stop().await;
    result
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `2026-12-02T15:04:05.123456Z` from Unix seconds.
fn rfc3339_micros(unix: f64) -> String {
    let secs = unix.floor();
    let micros = ((unix - secs) * 1e6).round().min(999_999.0) as u64;
    let base = crate::events::rfc3339(UNIX_EPOCH + Duration::from_secs(secs as u64));
    // `rfc3339` ends in `.mmmZ`; put microseconds in its place.
    let stem = base.split('.').next().unwrap_or(&base);
    format!("{stem}.{micros:06}Z")
}

/// One click per request, on one of `users` sessions, stamped with the time
/// the request is built.
fn webhook(base: &str, users: usize) -> Arc<MakeRequest> {
    let url = format!("{base}/webhook/demo");
    let users = users.max(1);
    Arc::new(move |http: &reqwest::Client, rng: &mut StdRng| {
        let i = rng.random_range(0..users);
        let body = serde_json::json!({
            "event": {
                "uuid": uuid::Uuid::new_v4().to_string(),
                "event": "$autocapture",
                "distinct_id": format!("stream-user-{i}"),
                "timestamp": rfc3339_micros(now_unix()),
                "elements_chain": "button.btn:text=\"Save changes\";body:nth-child=\"2\"",
                "properties": {
                    "$event_type": "click",
                    "$el_text": "Save changes",
                    "$session_id": format!("stream-session-{i}"),
                    "$current_url": "https://app.example.com/projects/42",
                    "email": format!("stream-user-{i}@example.com"),
                }
            },
            "person": null
        });
        http.post(&url)
            .header("Content-Type", "application/json")
            .header("X-PostHog-Secret", SECRET)
            .body(body.to_string())
    })
}

fn accepted_one() -> Arc<CheckBody> {
    Arc::new(|body: &[u8]| body.windows(12).any(|w| w == b"\"accepted\":1"))
}

/// What the subscribers saw in one measured phase.
#[derive(Default)]
struct Seen {
    /// Bytes read, as sent (compressed or not), by every subscriber.
    bytes: AtomicU64,
    frames: AtomicU64,
    actions: AtomicU64,
    gaps: AtomicU64,
    lag: Mutex<Lat>,
}

/// Measured phases with subscribers: closed-loop ingest, then paced ingest.
const CLOSED: usize = 1;
const PACED: usize = 2;

/// Reads one subscription until `stop`: counts frames (actions, summaries,
/// gaps), actions frames and gap frames, and
/// samples the lag of the first frame in each read (the oldest in it, so the
/// sample errs high).
#[allow(clippy::too_many_arguments)]
async fn subscriber(
    http: reqwest::Client,
    url: String,
    gzip: bool,
    probe: bool,
    recording: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    seen: Arc<[Seen; 3]>,
    connected: Arc<tokio::sync::Barrier>,
) -> anyhow::Result<()> {
    let mut request = http
        .get(&url)
        .header("Accept", "text/event-stream")
        .bearer_auth(STREAM_KEY);
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let response = request.send().await;
    connected.wait().await;
    let mut response = response?;
    anyhow::ensure!(
        response.status().is_success(),
        "stream answered {}",
        response.status()
    );
    let mut lats = [Lat::new(), Lat::new(), Lat::new()];
    // gzip: only the probe inflates (the others count bytes): inflating 100
    // streams would take loadgen more CPU than the server spends on them.
    let mut inflate = flate2::write::GzDecoder::new(Vec::new());
    const NEEDLE: &[u8] = b"\"timestamp_start\":";
    while !stop.load(Ordering::Relaxed) {
        let chunk = match tokio::time::timeout(Duration::from_millis(200), response.chunk()).await {
            Err(_) => continue,
            Ok(chunk) => match chunk? {
                Some(chunk) => chunk,
                None => break,
            },
        };
        let read_at = now_unix();
        let phase = recording.load(Ordering::Relaxed);
        let sent = chunk.len() as u64;
        // The probe inflates everything, from the gzip header on.
        let chunk = if !gzip {
            chunk.to_vec()
        } else if probe {
            use std::io::Write;
            inflate.write_all(&chunk)?;
            inflate.flush()?;
            std::mem::take(inflate.get_mut())
        } else {
            Vec::new()
        };
        if phase == 0 {
            continue;
        }
        let (seen, lat) = (&seen[phase], &mut lats[phase]);
        seen.bytes.fetch_add(sent, Ordering::Relaxed);
        let frames = memchr::memmem::find_iter(&chunk, b"\n\n").count() as u64;
        seen.frames.fetch_add(frames, Ordering::Relaxed);
        let actions =
            memchr::memmem::find_iter(&chunk, b"data: {\"type\":\"actions\"").count() as u64;
        seen.actions.fetch_add(actions, Ordering::Relaxed);
        let gaps = memchr::memmem::find_iter(&chunk, b"\"type\":\"gap\"").count() as u64;
        seen.gaps.fetch_add(gaps, Ordering::Relaxed);
        if let Some(at) = memchr::memmem::find(&chunk, NEEDLE) {
            let rest = &chunk[at + NEEDLE.len()..];
            // A number cut off by the end of the read is no sample.
            let end = rest.iter().position(|b| *b == b',' || *b == b'}');
            if let Some(ts) = end
                .and_then(|end| std::str::from_utf8(&rest[..end]).ok())
                .and_then(|t| t.parse::<f64>().ok())
            {
                lat.record(Duration::from_secs_f64((read_at - ts).max(0.0)));
            }
        }
    }
    for (seen, lat) in seen.iter().zip(&lats) {
        seen.lag.lock().await.merge(lat);
    }
    Ok(())
}

/// Warm-up, then the measured phase, during which `recording` is `phase`.
/// `rate`: webhooks per second, or `None` for a closed loop.
async fn ingest(
    ctx: &Ctx,
    server: &Server,
    http: &reqwest::Client,
    recording: &AtomicUsize,
    phase: usize,
    rate: Option<f64>,
) -> (LoadResult, CpuUse) {
    let cli = &ctx.cli;
    let make = webhook(&server.base, cli.users);
    let duration = Duration::from_secs(cli.duration);
    if cli.warmup > 0 && rate.is_none() {
        http::closed_loop(
            http,
            cli.concurrency,
            Duration::from_secs(cli.warmup),
            make.clone(),
            None,
        )
        .await;
    }
    recording.store(phase, Ordering::Relaxed);
    let meter = CpuMeter::start(server);
    let check = Some(accepted_one());
    let result = match rate {
        None => http::closed_loop(http, cli.concurrency, duration, make, check).await,
        Some(rate) => {
            let every = Duration::from_secs_f64(cli.concurrency as f64 / rate.max(1.0));
            http::paced_loop(http, cli.concurrency, duration, every, make, check).await
        }
    };
    (result, meter.stop())
}

async fn run(ctx: &Ctx, server: &Server) -> anyhow::Result<()> {
    let cli = &ctx.cli;
    let http = http::client(cli.concurrency)?;
    let (alone, alone_cpu) = ingest(ctx, server, &http, &AtomicUsize::new(0), 0, None).await;

    // Subscribers on connections of their own.
    let sse = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .build()?;
    let recording = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<[Seen; 3]> = Arc::default();
    let connected = Arc::new(tokio::sync::Barrier::new(cli.subscribers + 1));
    let url = format!("{}/stream/demo", server.base);
    let handles: Vec<_> = (0..cli.subscribers)
        .map(|i| {
            tokio::spawn(subscriber(
                sse.clone(),
                url.clone(),
                cli.stream_gzip,
                i == 0,
                recording.clone(),
                stop.clone(),
                seen.clone(),
                connected.clone(),
            ))
        })
        .collect();
    connected.wait().await;
    // Let every subscription reach the server before load starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribed = server::metric(&http, &server.base, "copilot_stream_subscribers").await;

    let (with, with_cpu) = ingest(ctx, server, &http, &recording, CLOSED, None).await;
    // Frames still in flight when ingest stops are counted too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    recording.store(0, Ordering::Relaxed);
    let dropped_closed =
        server::metric(&http, &server.base, "copilot_stream_frames_dropped_total").await;
    // Let subscribers that fell behind catch up before the paced phase.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (paced, paced_cpu) =
        ingest(ctx, server, &http, &recording, PACED, Some(cli.stream_rate)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    recording.store(0, Ordering::Relaxed);
    let window = cli.duration as f64 + 0.5;
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for handle in handles {
        if !matches!(handle.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    let dropped = server::metric(&http, &server.base, "copilot_stream_frames_dropped_total").await;

    let mut t = load_table("phase");
    let row = load_row;
    t.row(row("ingest, no subscribers", &alone, &alone_cpu));
    t.row(row(
        &format!("ingest, {} subscribers", cli.subscribers),
        &with,
        &with_cpu,
    ));
    t.row(row(
        &format!(
            "ingest paced at {:.0}/s, {} subscribers",
            cli.stream_rate, cli.subscribers
        ),
        &paced,
        &paced_cpu,
    ));
    t.print();
    let ratio = with.rps() / alone.rps().max(1e-9);
    let mut lines = Vec::new();
    let readers = if cli.stream_gzip {
        1
    } else {
        cli.subscribers.max(1)
    };
    for (phase, name, webhooks, dropped) in [
        (
            CLOSED,
            "closed loop",
            with.ok,
            dropped_closed.unwrap_or(0.0),
        ),
        (
            PACED,
            "paced",
            paced.ok,
            dropped.unwrap_or(0.0) - dropped_closed.unwrap_or(0.0),
        ),
    ] {
        let seen = &seen[phase];
        let frames = seen.frames.load(Ordering::Relaxed);
        let actions = seen.actions.load(Ordering::Relaxed);
        let lag = seen.lag.lock().await;
        let p99_ms = lag.p99_us().map(|us| us as f64 / 1000.0);
        lines.push((
            format!(
                "{name}: frames delivered, all subscribers (actions and summaries) / per second"
            ),
            format!("{frames} / {:.0}", frames as f64 / window.max(1e-9)),
        ));
        lines.push((
            format!("{name}: actions frames per webhook per subscriber (1.0 = none lost)"),
            format!(
                "{:.3}",
                actions as f64 / (webhooks.max(1) as f64 * readers as f64)
            ),
        ));
        lines.push((
            format!("{name}: gap frames read / frames dropped by the server"),
            format!("{} / {dropped}", seen.gaps.load(Ordering::Relaxed)),
        ));
        lines.push((
            format!("{name}: delivery lag p50 / p99 / max ms (event built → frame read)"),
            format!("{} / {} / {}", lag.q_ms(0.50), lag.q_ms(0.99), lag.max_ms()),
        ));
        lines.push((
            format!("{name}: target lag p99 < 50 ms"),
            verdict(p99_ms.is_some_and(|p| p < 50.0)),
        ));
    }
    kv(
        "stream summary",
        vec![
            (
                "subscribers connected (server's copilot_stream_subscribers) / failed",
                format!(
                    "{} / {failed}",
                    subscribed.map_or("n/a".to_owned(), |s| s.to_string())
                ),
            ),
            (
                "ingest with subscribers / without",
                format!("{ratio:.3} ({:.0}%)", ratio * 100.0),
            ),
            ("target: >= 80%", verdict(ratio >= 0.8)),
        ]
        .into_iter()
        .chain(lines.iter().map(|(k, v)| (k.as_str(), v.clone())))
        .collect(),
    );
    Ok(())
}

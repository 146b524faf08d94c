//! loadgen: load, latency, connection and memory benchmarks for copilot-server.
//!
//! `cargo run --release -p loadgen -- <ingest|chat|connections|memory|soak|stream|all> [options]`
//! (build the server first: `cargo build --release -p copilot-server -p loadgen`).
//! By default each mode starts a fresh server (the copilot-server binary next to
//! this one) on a free 127.0.0.1 port and stops it at the end; `--target URL`
//! uses a running server instead (`--server-pid` for its RSS and CPU).

mod bare;
mod chat;
mod conns;
mod events;
mod floor;
mod http;
mod modes;
mod scaleout;
mod server;
mod stats;
mod stream;
mod sys;

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Parser, ValueEnum};

use crate::server::{Launch, Server};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Webhook ingest vs. the /healthz baseline (closed loop, keep-alive).
    Ingest,
    /// Socket.IO chat turn latency with many clients connected.
    Chat,
    /// How many idle Socket.IO sockets the server holds, and their memory.
    Connections,
    /// RSS of a store filled with S sessions × A actions.
    Memory,
    /// Mixed ingest + chat at a fixed rate for N minutes, RSS sampled every 10 s.
    Soak,
    /// Webhook ingest with and without S SSE subscribers on one product:
    /// frames delivered, delivery lag, ingest rate.
    Stream,
    /// Webhook ingest on two instances sharing a redis-server loadgen starts,
    /// against one instance with the embedded store, in the same run.
    Scaleout,
    /// ingest, chat, connections, memory, soak, stream, scaleout in order (see --skip).
    All,
    /// Internal: the bare axum baseline ingest starts (`--port`).
    #[value(hide = true)]
    BareServer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Database {
    File,
    Memory,
}

#[derive(Parser, Clone, Debug)]
#[command(version, about = "Load tool for copilot-server")]
pub struct Cli {
    #[arg(value_enum)]
    pub mode: Mode,

    /// Use a running server (e.g. http://127.0.0.1:5005) instead of starting one.
    #[arg(long)]
    pub target: Option<String>,
    /// With --target: the server's pid, for RSS and CPU from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The copilot-server binary (default: next to this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// The repository root: the server's working directory and where fixtures are read.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Modes `all` leaves out (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub skip: Vec<Mode>,
    /// Worker threads of loadgen's own runtime (it shares the machine with the server).
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// The database of the server loadgen starts: `file` (the durable default,
    /// a SQLite file in a temp dir, as deployed) or `memory` (`sqlite::memory:`).
    #[arg(long, value_enum, default_value_t = Database::File)]
    pub database: Database,
    /// `RUST_LOG` of the server loadgen starts; `warn,tower_http=debug` adds
    /// an access-log line per request (to measure what logging costs).
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// `bare-server` only: the port to listen on.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// `bare-server` only: also commit each event to this SQLite file before
    /// answering (the durable floor).
    #[arg(long)]
    pub durable: Option<PathBuf>,

    // ingest
    /// Keep-alive HTTP connections (ingest, memory).
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds per measured phase (ingest and its /healthz baseline).
    #[arg(short = 'd', long, default_value_t = 10)]
    pub duration: u64,
    /// Unmeasured warm-up seconds before each ingest phase.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,
    /// Distinct users (one session each) the ingest events are spread over.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,

    // chat
    /// Socket.IO clients connected during the chat test.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Of those, how many send messages (default: all of them).
    #[arg(long, default_value_t = 1000)]
    pub active: usize,
    /// Timed messages each active client sends, one at a time.
    #[arg(long, default_value_t = 10)]
    pub messages: usize,
    /// Pause (ms) an active client takes between a reply and its next message:
    /// 1,000 clients pausing about 1 s offer about 1,000 turns/s, far chattier
    /// than people type. 0 = back to back: a saturation (capacity) test, where
    /// latency is queueing (`--active 50 --think-ms 0 --messages 400`).
    #[arg(long, default_value_t = 1000)]
    pub think_ms: u64,
    /// Sockets opened concurrently per batch (chat, connections, soak).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,

    // connections
    /// Idle sockets to open.
    #[arg(long, default_value_t = 10000)]
    pub connections: usize,
    /// Seconds to hold them once open (covers a 25 s server ping round).
    #[arg(long, default_value_t = 30)]
    pub hold: u64,

    // memory
    /// Sessions to fill the store with.
    #[arg(long, default_value_t = 10000)]
    pub sessions: usize,
    /// Actions (events) per session, sent as one `{"batch":[…]}`.
    #[arg(long, default_value_t = 30)]
    pub actions: usize,
    /// Seconds to wait before the last RSS reading.
    #[arg(long, default_value_t = 10)]
    pub settle: u64,

    // stream
    /// SSE subscribers on the demo product during the stream test.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Stream subscribers send `Accept-Encoding: gzip`, as httpx (the SDK) and
    /// browsers do; only the first then inflates and counts frames, the
    /// others count bytes. `--stream-gzip false`: plain SSE, all count frames.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub stream_gzip: bool,
    /// Webhooks per second in the stream test's paced phase.
    #[arg(long, default_value_t = 2000.0)]
    pub stream_rate: f64,

    // soak
    /// Soak length in minutes.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Soak webhook requests per second (fixed rate).
    #[arg(long, default_value_t = 200.0)]
    pub soak_ingest_rps: f64,
    /// Soak chat turns per second (fixed rate, spread over the soak clients).
    #[arg(long, default_value_t = 20.0)]
    pub soak_chat_rps: f64,
    /// Socket.IO clients connected (and chatting) during the soak.
    #[arg(long, default_value_t = 200)]
    pub soak_clients: usize,
    /// Seconds between RSS samples in the soak.
    #[arg(long, default_value_t = 10)]
    pub sample_every: u64,
}

pub struct Ctx {
    pub cli: Cli,
    pub repo: PathBuf,
    pub launch: Option<Launch>,
}

impl Ctx {
    /// A fresh server per mode (ours), or the target.
    pub async fn server(&self) -> anyhow::Result<Server> {
        match (&self.cli.target, &self.launch) {
            (Some(target), _) => Ok(Server::attach(target, self.cli.server_pid)),
            (None, Some(launch)) => Server::start(launch).await,
            (None, None) => anyhow::bail!("no server to test"),
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.mode == Mode::BareServer {
        // The same runtime as the server under test: one worker per core.
        let served = tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    match &cli.durable {
                        Some(path) => floor::serve(cli.port, path).await,
                        None => bare::serve(cli.port).await,
                    }
                })
            });
        if let Err(e) = served {
            eprintln!("loadgen bare-server: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
        return std::process::ExitCode::SUCCESS;
    }
    let threads = cli
        .client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, threads)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, threads: usize) -> anyhow::Result<()> {
    // Every socket costs a descriptor on both sides: raise our soft limit to the
    // hard one; the server we start inherits it.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);

    let repo = match &cli.repo {
        Some(r) => r.clone(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let repo = repo.canonicalize().unwrap_or(repo);
    let launch = if cli.target.is_none() {
        let bin = match &cli.server_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?
                .parent()
                .map(|d| d.join("copilot-server"))
                .unwrap_or_else(|| PathBuf::from("copilot-server")),
        };
        Some(Launch {
            bin,
            repo: repo.clone(),
            database: cli.database,
            log_filter: cli.server_log.clone(),
            env: Vec::new(),
        })
    } else {
        None
    };

    // Ctrl-C: stop the server we started, then exit.
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            let pid = server::CHILD_PID.load(Ordering::SeqCst);
            if let Ok(pid) = i32::try_from(pid)
                && pid > 0
            {
                // SAFETY: signalling the server process we spawned.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            eprintln!("loadgen: interrupted");
            std::process::exit(130);
        }
    });

    println!("# copilot-server load test");
    println!();
    for line in sys::machine_lines() {
        println!("- {line}");
    }
    match &launch {
        Some(l) => {
            let built = std::fs::metadata(&l.bin)
                .and_then(|m| m.modified())
                .map(events::rfc3339)
                .unwrap_or_else(|_| "unknown".to_owned());
            println!(
                "- server: {} (binary {}, built {built})",
                l.version(),
                l.bin.display()
            );
            println!(
                "- server started by loadgen: a fresh one per mode, cwd {}, env COPILOT__SERVER__LOG_FORMAT=json RUST_LOG={}, OPENAI_API_KEY unset, database {:?} (file = a new SQLite file in a temp dir, the durable default)",
                repo.display(),
                cli.server_log,
                cli.database
            );
        }
        None => println!(
            "- server: running at {} (pid {})",
            cli.target.as_deref().unwrap_or_default(),
            cli.server_pid
                .map_or("unknown".to_owned(), |p| p.to_string())
        ),
    }
    println!("- commit: {}", sys::git_commit(&repo));
    println!(
        "- load average at start: {} (CPU % columns: 100% = one core of {})",
        sys::loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "- nice: {}, {} (the server inherits both; other jobs on the machine compete for the same cores)",
        sys::nice(sys::self_pid()).map_or("n/a".to_owned(), |n| n.to_string()),
        std::fs::read_to_string("/proc/self/autogroup")
            .map_or("no autogroup".to_owned(), |s| s.trim().to_owned())
    );
    println!("- RLIMIT_NOFILE soft limit: {nofile}; loadgen runtime threads: {threads}");
    let args: Vec<String> = std::env::args().collect();
    println!("- command: {}", args.join(" "));
    println!();

    let ctx = Ctx {
        cli: cli.clone(),
        repo,
        launch,
    };
    let order = [
        Mode::Ingest,
        Mode::Chat,
        Mode::Connections,
        Mode::Memory,
        Mode::Soak,
        Mode::Stream,
        Mode::Scaleout,
    ];
    let modes: Vec<Mode> = if cli.mode == Mode::All {
        order
            .into_iter()
            .filter(|m| !cli.skip.contains(m))
            .collect()
    } else {
        vec![cli.mode]
    };
    let mut failures = 0;
    for mode in modes {
        let result = match mode {
            Mode::Ingest => modes::ingest(&ctx).await,
            Mode::Chat => modes::chat(&ctx).await,
            Mode::Connections => modes::connections(&ctx).await,
            Mode::Memory => modes::memory(&ctx).await,
            Mode::Soak => modes::soak(&ctx).await,
            Mode::Stream => stream::stream(&ctx).await,
            Mode::Scaleout => scaleout::scaleout(&ctx).await,
            Mode::All | Mode::BareServer => Ok(()),
        };
        if let Err(e) = result {
            failures += 1;
            println!("**{mode:?} failed:** {e:#}");
            println!();
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} mode(s) failed");
    }
    Ok(())
}

//! The binary: parse the CLI, load settings, start logging, run the server
//! (or one `products` command).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use copilot_server::cli::{self, Command};
use copilot_server::config::Settings;
use copilot_server::startup::{Application, shutdown_signal};
use copilot_server::telemetry;

// Ingest and chat allocate many short strings per request; mimalloc's
// per-thread free lists cut their cost (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An in-app chat copilot grounded in what the user just did.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file overriding `config/default.toml` (only the keys you change).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            // Logging is not set up yet (its format is a setting).
            eprintln!("copilot-server: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Built here, not by `#[tokio::main]`, because its size is a setting.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if settings.server.worker_threads > 0 {
        runtime.worker_threads(settings.server.worker_threads);
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli, settings)),
        Err(error) => {
            eprintln!("copilot-server: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> ExitCode {
    telemetry::init(settings.server.log_format);
    match cli.command {
        None | Some(Command::Serve) => serve(settings).await,
        Some(Command::Products(command)) => match cli::run_products(&settings, command).await {
            Ok(text) => {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{text}").is_err() {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("copilot-server: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    let token = app.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
        token.cancel();
    });
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

//! Building and running the application: bind the listener (port 0 allowed, the
//! real port read back), wire the state, serve until the shutdown token fires,
//! then wait for background work. Tests start the server through this same path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use socketioxide::layer::SocketIoLayer;

use crate::channels;
use crate::config::Settings;
use crate::context::{ContextStore, OfflineSummariser, Summariser};
use crate::dialogue::{Conversations, Copilot, LlmSetup};
use crate::domain::ProductId;
use crate::llm::{LlmClient, LlmSummariser, OpenAiClient, prompt};
use crate::metrics::Metrics;
use crate::nlu::Matcher;
use crate::proactive::Proactive;
use crate::rasa::{self, Project};
use crate::state::{AppState, Shared};
use crate::web;

/// How long shutdown waits for background work (summaries) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The intent files could not be loaded.
    #[error("could not load intents: {0}")]
    Intents(#[from] crate::rasa::Error),
    /// The system prompt file exists but could not be read.
    #[error("could not read the system prompt {}: {source}", path.display())]
    SystemPrompt {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("could not bind {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    socket_layer: SocketIoLayer,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        for product in settings.exposed_default_secrets() {
            tracing::warn!(
                product,
                address = %settings.address(),
                "product uses the public demo webhook secret on a non-loopback address; \
                 set products[].webhook_secret to a secret of your own"
            );
        }
        let address = settings.address();
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| StartupError::Bind { address, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();

        let metrics = Metrics::new();
        let project = load_project(&settings.nlu.intents_dir)?;
        let matcher = Matcher::train(
            &project,
            settings.nlu.fallback_threshold,
            settings.nlu.ambiguity_threshold,
        );
        let llm: Option<Arc<dyn LlmClient>> = settings.llm.enabled().then(|| {
            Arc::new(OpenAiClient::new(&settings.llm, metrics.clone())) as Arc<dyn LlmClient>
        });
        let summariser: Arc<dyn Summariser> = match &llm {
            Some(client) => Arc::new(LlmSummariser::new(
                Arc::clone(client),
                settings.llm.summary_temperature,
                settings.llm.summary_max_tokens,
            )),
            None => Arc::new(OfflineSummariser),
        };
        let llm = match llm {
            Some(client) => {
                let path = &settings.llm.system_prompt_file;
                let system_prompt = prompt::load_system_prompt(path).map_err(|source| {
                    StartupError::SystemPrompt {
                        path: path.clone(),
                        source,
                    }
                })?;
                tracing::info!(model = %settings.llm.model, base_url = %settings.llm.base_url, "LLM enabled");
                Some(LlmSetup::new(client, system_prompt, &settings.llm))
            }
            None => {
                tracing::info!("no LLM API key: answering and summarising offline from templates");
                None
            }
        };

        let tasks = TaskTracker::new();
        let store = ContextStore::new(
            &settings.context,
            summariser,
            tasks.clone(),
            metrics.clone(),
        );
        let conversations = Conversations::new(&settings.chat);
        let copilot = Copilot::new(
            store.clone(),
            conversations,
            &project,
            matcher,
            llm,
            metrics.clone(),
        );
        let proactive = Proactive::new(&settings.proactive, store.clone(), metrics.clone());
        let (socket_layer, io) = channels::socketio::layer(
            copilot.clone(),
            proactive.clone(),
            metrics.clone(),
            &settings.socketio,
        );
        // Product ids were validated with the settings; an invalid one cannot reach here.
        let products: HashMap<ProductId, _> = settings
            .products
            .iter()
            .filter_map(|p| Some((ProductId::parse(&p.id).ok()?, p.clone())))
            .collect();
        let state = AppState::new(Shared {
            copilot,
            proactive,
            metrics,
            io,
            store,
            products: Arc::new(products),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
            tasks,
        });
        Ok(Self {
            listener,
            port,
            state,
            socket_layer,
        })
    }

    /// The port actually bound (useful when the settings asked for 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let shutdown = self.state.shutdown.clone();
        let tasks = self.state.tasks.clone();
        tracing::info!(port = self.port, "copilot-server listening");
        let io = self.state.io.clone();
        tasks.spawn(self.state.proactive.clone().run(shutdown.clone()));
        let router = web::router(self.state, self.socket_layer);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        io.close().await;
        tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work still running at shutdown; abandoning it");
        }
        tracing::info!("copilot-server stopped");
        Ok(())
    }
}

/// The intents in `dir`, or the built-in ones when `dir` does not exist.
fn load_project(dir: &std::path::Path) -> Result<Project, StartupError> {
    if dir.is_dir() {
        tracing::info!(dir = %dir.display(), "loading intents");
        Ok(Project::load_dir(dir)?)
    } else {
        tracing::info!(dir = %dir.display(), "intents directory not found; using the built-in intents");
        Ok(Project::from_sources(rasa::EMBEDDED.iter().copied())?)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

//! Building and running the application: bind the listener (port 0 allowed, the
//! real port read back), wire the state, serve until the shutdown token fires,
//! then wait for background work. Tests start the server through this same path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::context::{ContextStore, OfflineSummariser};
use crate::dialogue::{Conversations, Copilot};
use crate::domain::ProductId;
use crate::state::AppState;
use crate::web;

/// How long shutdown waits for background work (summaries) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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

        let tasks = TaskTracker::new();
        let store = ContextStore::new(
            &settings.context,
            Arc::new(OfflineSummariser),
            tasks.clone(),
        );
        let conversations = Conversations::new(&settings.chat);
        // Product ids were validated with the settings; an invalid one cannot reach here.
        let products: HashMap<ProductId, _> = settings
            .products
            .iter()
            .filter_map(|p| Some((ProductId::parse(&p.id).ok()?, p.clone())))
            .collect();
        let state = AppState {
            copilot: Copilot::new(store.clone(), conversations),
            store,
            products: Arc::new(products),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
            tasks,
        };
        Ok(Self {
            listener,
            port,
            state,
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
        let router = web::router(self.state);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
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

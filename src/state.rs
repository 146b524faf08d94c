//! The state every handler shares. Cheap to clone: one `Arc` (axum clones the
//! state for every request, and the parts hold a dozen `Arc`s between them).

use std::collections::HashMap;
use std::sync::Arc;

use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ProductSettings, Settings};
use crate::context::ContextStore;
use crate::dialogue::Copilot;
use crate::domain::ProductId;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// Settings as loaded at start-up.
    pub settings: Arc<Settings>,
    /// Configured products by id.
    pub products: Arc<HashMap<ProductId, ProductSettings>>,
    /// Actions, summaries and the user index.
    pub store: ContextStore,
    /// Answers questions; shared by every channel.
    pub copilot: Copilot,
    /// Proactive triggers and per-session state machines.
    pub proactive: crate::proactive::Proactive,
    /// Counters behind `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The Socket.IO handle, for pushing messages outside a chat turn.
    pub io: SocketIo,
    /// Cancelled when the server is asked to stop.
    pub shutdown: CancellationToken,
    /// Background work (summaries) that shutdown waits for.
    pub tasks: TaskTracker,
}

impl Shared {
    /// The product whose posthog-js project token this is.
    pub fn product_by_token(&self, token: &str) -> Option<ProductId> {
        self.products
            .iter()
            .find(|(_, p)| !p.posthog_api_key.is_empty() && p.posthog_api_key == token)
            .map(|(id, _)| id.clone())
    }

    /// The product with this id, if configured.
    pub fn product(&self, id: &str) -> Option<(ProductId, &ProductSettings)> {
        let id = ProductId::parse(id).ok()?;
        let settings = self.products.get(&id)?;
        Some((id, settings))
    }
}

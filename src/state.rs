//! The state every handler shares. Cheap to clone: one `Arc` (axum clones the
//! state for every request, and the parts hold a dozen `Arc`s between them).

use std::sync::Arc;

use socketioxide::SocketIo;

use crate::redis::bus::Adapter;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::context::ContextStore;
use crate::dialogue::Copilot;
use crate::products::Products;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Shared {
    /// Where ingest puts what it accepts.
    pub fn sinks(&self) -> crate::ingest::Sinks<'_> {
        crate::ingest::Sinks {
            store: &self.store,
            stream: &self.stream,
            keeper: &self.keeper,
        }
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
    /// Products (from the database), read from memory.
    pub products: Products,
    /// Actions, summaries and the user index.
    pub store: ContextStore,
    /// What a restart must not lose, written before ingest answers: the
    /// journal, or the Redis log every instance shares.
    pub keeper: crate::keeper::Keeper,
    /// The activity stream: SSE subscribers and push delivery read from it.
    pub stream: crate::stream::Hub,
    /// Push delivery workers, started and stopped as products change.
    pub forwarders: crate::stream::Forwarders,
    /// Answers questions; shared by every channel.
    pub copilot: Copilot,
    /// Help pages, searched by the copilot and changed by the knowledge API.
    pub knowledge: crate::knowledge::Knowledge,
    /// Help pages sent through the API, as the database keeps them.
    pub pages: crate::db::Pages,
    /// Proactive triggers and per-session state machines.
    pub proactive: crate::proactive::Proactive,
    /// The team console: recorded turns, logins, retraining.
    pub console: crate::console::Console,
    /// Counters behind `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The Socket.IO handle, for pushing messages outside a chat turn.
    pub io: SocketIo<Adapter>,
    /// Cancelled when the server is asked to stop.
    pub shutdown: CancellationToken,
    /// Background work (summaries) that shutdown waits for.
    pub tasks: TaskTracker,
}

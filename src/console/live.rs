//! The console's live view: a product's active sessions, each with the user,
//! the actions and summary the store holds, and the proactive phase.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::context::ContextStore;
use crate::domain::ProductId;
use crate::proactive::Proactive;

/// Sessions shown at most.
const MAX_SESSIONS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Live {
    pub product: String,
    pub sessions: Vec<LiveSession>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSession {
    pub session_id: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub idle_seconds: u64,
    pub actions: Vec<LiveAction>,
    pub summary: Option<String>,
    pub proactive: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveAction {
    pub index: u64,
    pub kind: String,
    pub text: String,
    pub url: String,
    pub at: DateTime<Utc>,
}

impl Live {
    /// The same sessions, actions and phases (idle time aside): nothing new to show.
    pub fn same_as(&self, other: &Live) -> bool {
        self.sessions.len() == other.sessions.len()
            && self.sessions.iter().zip(&other.sessions).all(|(a, b)| {
                a.session_id == b.session_id
                    && a.actions == b.actions
                    && a.summary == b.summary
                    && a.proactive == b.proactive
            })
    }
}

pub fn snapshot(
    store: &ContextStore,
    proactive: &Proactive,
    product: &ProductId,
    within: Duration,
) -> Live {
    let sessions = store
        .active_sessions(product, within, MAX_SESSIONS)
        .into_iter()
        .map(|view| {
            let latest = view.latest.as_ref();
            LiveSession {
                session_id: view.session.as_str().to_owned(),
                user_id: latest.map(|a| a.user_id.as_str().to_owned()),
                email: latest.and_then(|a| a.email.clone()),
                idle_seconds: view.idle_for.as_secs(),
                actions: view
                    .actions
                    .iter()
                    .map(|(index, action)| LiveAction {
                        index: *index,
                        kind: action.kind.as_str().to_owned(),
                        text: action.description(),
                        url: action.canonical_url.clone(),
                        at: action.timestamp,
                    })
                    .collect(),
                summary: view.summary.clone(),
                proactive: proactive.phase(product, &view.session),
            }
        })
        .collect();
    Live {
        product: product.as_str().to_owned(),
        sessions,
    }
}

//! Ingest: PostHog webhook bodies in, typed events and human-readable actions out.
//! Pure functions over bytes, and `deliver`, which hands the result to the
//! stream and the store; the HTTP edge does auth.

pub mod action;
pub mod auth;
pub mod canonical_url;
pub mod capture;
pub mod elements_chain;
pub mod event;

pub use action::{Classified, classify};
pub use event::{Event, parse_body, parse_events};

use chrono::Utc;
use serde::Serialize;

use crate::context::ContextStore;
use crate::domain::{ProductId, SessionId};
use crate::stream::{Hub, actions_payloads};

/// What a delivery became.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub accepted: usize,
    pub ignored: usize,
    pub duplicates: usize,
    /// Sessions that received new actions (for proactive triggers).
    #[serde(skip)]
    pub sessions: Vec<SessionId>,
}

/// Classifies events, drops retried deliveries, publishes the new actions to
/// the product's stream (when anyone listens), stores them. Ignored events
/// still teach the store a user's email (`$identify` carries `$set.email`).
pub fn deliver(
    store: &ContextStore,
    stream: &Hub,
    product: &ProductId,
    events: &[Event],
) -> Delivered {
    let now = Utc::now();
    let mut delivered = Delivered::default();
    let mut actions = Vec::with_capacity(events.len());
    for event in events {
        match classify(event, now) {
            Classified::Ignored => {
                delivered.ignored += 1;
                if let Some(email) = &event.email {
                    store.note_email(product, &event.user_id, email);
                }
            }
            Classified::Action(action) => {
                if store.first_delivery(product, &event.dedupe_key) {
                    actions.push(*action);
                } else {
                    delivered.duplicates += 1;
                }
            }
        }
    }
    delivered.accepted = actions.len();
    for action in &actions {
        if !delivered.sessions.contains(&action.session_id) {
            delivered.sessions.push(action.session_id.clone());
        }
    }
    if !actions.is_empty() && stream.wanted(product) {
        stream.publish(product, actions_payloads(product, &actions, now));
    }
    store.record(product, actions);
    delivered
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// JSON, but not one of the accepted shapes; `path` names the failing place.
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

impl Error {
    fn shape(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Shape {
            path: path.into(),
            message: message.into(),
        }
    }
}

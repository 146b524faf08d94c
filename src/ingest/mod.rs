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
use crate::keeper::Keeper;
use crate::stream::{Hub, actions_payloads};

/// What a delivery became.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub accepted: usize,
    pub ignored: usize,
    pub duplicates: usize,
    /// Sessions that received new actions and whose offers this instance
    /// makes (for proactive triggers).
    #[serde(skip)]
    pub sessions: Vec<SessionId>,
}

/// Where ingest puts what it accepted.
pub struct Sinks<'a> {
    pub store: &'a ContextStore,
    pub stream: &'a Hub,
    pub keeper: &'a Keeper,
}

/// Classifies events, drops retried deliveries, keeps the new actions in the
/// journal (committed before this returns), then publishes them to the
/// product's stream (when anyone listens) and stores them. Ignored events
/// still teach the store a user's email (`$identify` carries `$set.email`).
/// On a journal failure nothing is stored or published and the delivery ids
/// are forgotten, so the sender's retry is not taken for a duplicate.
pub async fn deliver(
    sinks: &Sinks<'_>,
    product: &ProductId,
    events: &[Event],
) -> Result<Delivered, NotKept> {
    let store = sinks.store;
    let now = Utc::now();
    let mut delivered = Delivered::default();
    let mut actions = Vec::with_capacity(events.len());
    let mut keys = Vec::with_capacity(events.len());
    let mut emails = Vec::new();
    for event in events {
        match classify(event, now) {
            Classified::Ignored => {
                delivered.ignored += 1;
                if let Some(email) = &event.email {
                    emails.push((&event.user_id, email.as_str()));
                }
            }
            Classified::Action(action) => {
                if store.first_delivery(product, &event.dedupe_key) {
                    actions.push(*action);
                    keys.push(event.dedupe_key.as_str());
                } else {
                    delivered.duplicates += 1;
                }
            }
        }
    }
    let kept = async {
        let kept = sinks.keeper.keep_actions(product, actions, &keys).await?;
        for (user, email) in &emails {
            if store.user_email(product, user).as_deref() != Some(*email) {
                sinks.keeper.keep_email(product, user, email).await?;
            }
        }
        Ok::<_, crate::keeper::Error>(kept)
    };
    let kept = match kept.await {
        Ok(kept) => kept,
        Err(error) => {
            for key in &keys {
                store.forget_delivery(product, key);
            }
            return Err(NotKept(error));
        }
    };
    let actions = kept.actions;
    delivered.duplicates += kept.duplicates;
    for (user, email) in emails {
        store.note_email(product, user, email);
    }
    delivered.accepted = actions.len();
    match kept.owned {
        Some(owned) => delivered.sessions = owned,
        None => {
            for (_, action) in &actions {
                if !delivered.sessions.contains(&action.session_id) {
                    delivered.sessions.push(action.session_id.clone());
                }
            }
        }
    }
    if !actions.is_empty() && sinks.stream.wanted(product) {
        let payloads = actions_payloads(product, actions.iter().map(|(_, a)| a), now);
        sinks.stream.publish(product, payloads);
    }
    store.record_sequenced(product, actions);
    Ok(delivered)
}

/// A delivery that could not be kept (the database is unavailable): nothing
/// of it was stored, and the sender should retry.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NotKept(#[from] crate::keeper::Error);

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

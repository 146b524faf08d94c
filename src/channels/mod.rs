//! Chat channels: the ways a question reaches the copilot (Rasa's Socket.IO and
//! REST channels, the bridge's `/reply`). Each turns its wire format into typed
//! calls on `dialogue::Copilot`.

pub mod payloads;
pub mod reply;
pub mod rest;
pub mod socketio;

use axum::Router;
use serde_json::Value;

use crate::domain::{IdError, UserId};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(reply::routes()).merge(rest::routes())
}

/// The user whose activity grounds a chat: `metadata.userId`, else
/// `metadata.customData.userId`, else the sender id (as Rasa's action server did).
pub fn user_id_from(metadata: Option<&Value>, sender: &str) -> Result<UserId, IdError> {
    let from_metadata = metadata.and_then(|m| {
        m.get("userId")
            .or_else(|| m.get("customData").and_then(|c| c.get("userId")))
            .and_then(user_id_value)
    });
    match from_metadata {
        Some(id) => Ok(id),
        None => UserId::parse(sender),
    }
}

/// A user id given as a string or a number.
pub fn user_id_value(value: &Value) -> Option<UserId> {
    match value {
        Value::String(s) => UserId::parse(s).ok(),
        Value::Number(n) => UserId::parse(&n.to_string()).ok(),
        _ => None,
    }
}

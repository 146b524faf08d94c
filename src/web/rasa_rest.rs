//! Rasa's REST channel and NLU endpoint: `POST /webhooks/rest/webhook`,
//! `GET /webhooks/rest/`, `GET /webhooks/socketio/`, `POST /model/parse`.
//! Bodies are parsed as JSON whatever the Content-Type (widgets send text/plain).
//! A message's metadata may carry `userId`, `userHash` and `productId`
//! (at the top or in `customData`); an unverified user is answered anonymously.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppJson;
use crate::channels::{claim_in, payloads};
use crate::dialogue::UserMessage;
use crate::identity::{self, Claim, Verdict};
use crate::metrics::Channel;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/rest/webhook", post(rest_message_post))
        .route("/webhooks/rest/", get(status_get))
        .route("/webhooks/rest", get(status_get))
        .route("/webhooks/socketio/", get(status_get))
        .route("/webhooks/socketio", get(status_get))
        .route("/model/parse", post(parse_post))
}

async fn status_get() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Deserialize)]
struct RestMessage {
    #[serde(default)]
    sender: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

async fn rest_message_post(
    State(state): State<AppState>,
    AppJson(body): AppJson<RestMessage>,
) -> Json<Vec<Value>> {
    let sender = body
        .sender
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let text = body.message.unwrap_or_default();
    // As Rasa's action server did: the sender is the user when nothing else says.
    let sender_claim = Claim {
        user_id: crate::domain::UserId::parse(&sender).ok(),
        ..Claim::default()
    };
    let claim = body
        .metadata
        .as_ref()
        .map(claim_in)
        .unwrap_or_default()
        .or(&sender_claim);
    let resolved = identity::resolve(&state.products, &claim);
    if resolved.verdict == Verdict::Unverified {
        state.metrics.unverified(Channel::Rest);
    }
    state.proactive.on_user_message(&resolved.visitor);
    let result = state
        .copilot
        .handle(&UserMessage {
            sender: sender.clone(),
            visitor: resolved.visitor,
            text: text.trim().to_owned(),
        })
        .await;
    Json(payloads::rest_items(&sender, &result.messages))
}

#[derive(Deserialize)]
struct ParseRequest {
    text: String,
}

async fn parse_post(
    State(state): State<AppState>,
    AppJson(body): AppJson<ParseRequest>,
) -> Json<Value> {
    let c = state.copilot.classify(&body.text);
    Json(json!({
        "text": body.text,
        "intent": c.intent,
        "entities": c.entities,
        "intent_ranking": c.ranking,
    }))
}

//! Rasa's REST channel and NLU endpoint: `POST /webhooks/rest/webhook`,
//! `GET /webhooks/rest/`, `GET /webhooks/socketio/`, `POST /model/parse`.
//! Bodies are parsed as JSON whatever the Content-Type (widgets send text/plain).
//! A message's metadata may carry `userId`, `userHash` and `productId`
//! (at the top or in `customData`); an unverified user is answered anonymously.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppJson, live};
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

/// Rasa's answer: a JSON array of messages. With `Accept: text/event-stream`
/// (opt-in, ours): `bot_stream` events while the answer is written, then one
/// `bot_uttered` event per message, the drafted one whole with its id.
async fn rest_message_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<RestMessage>,
) -> Response {
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
    let message = UserMessage {
        sender: sender.clone(),
        visitor: resolved.visitor,
        text: text.trim().to_owned(),
    };
    if !live::wants_events(&headers) {
        let result = state.copilot.handle(&message).await;
        return Json(payloads::rest_items(&sender, &result.messages)).into_response();
    }
    let turn = crate::dialogue::live::run(state.copilot.clone(), message, Default::default());
    live::sse(turn, move |result, message_id| {
        let drafted = result.drafted.map(|i| (i, message_id));
        payloads::rest_items_drafted(&sender, &result.messages, drafted)
            .iter()
            .map(|item| live::event("bot_uttered", item))
            .collect()
    })
    .into_response()
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

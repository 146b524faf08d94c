//! Rasa's REST channel and NLU endpoint: `POST /webhooks/rest/webhook`,
//! `GET /webhooks/rest/`, `GET /webhooks/socketio/`, `POST /model/parse`.
//! Bodies are parsed as JSON whatever the Content-Type (widgets send text/plain).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{payloads, user_id_from};
use crate::dialogue::UserMessage;
use crate::nlu::IntentScore;
use crate::state::AppState;
use crate::web::AppError;

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

fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, AppError> {
    let body = body.map_err(|r| AppError::from_body(r, state.settings.server.body_limit_bytes))?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::BadRequest(format!("body is not valid JSON: {inner}"))
        } else {
            AppError::Unprocessable(format!("{path}: {inner}"))
        }
    })
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Value>>, AppError> {
    let body: RestMessage = json_body(&state, body)?;
    let sender = body
        .sender
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let text = body.message.unwrap_or_default();
    let user = user_id_from(body.metadata.as_ref(), &sender)
        .map_err(|e| AppError::BadRequest(format!("sender {e}")))?;
    state.proactive.on_user_message(&user);
    let result = state
        .copilot
        .handle(&UserMessage {
            sender: sender.clone(),
            user,
            text: text.trim().to_owned(),
        })
        .await;
    Ok(Json(payloads::rest_items(&sender, &result.messages)))
}

#[derive(Deserialize)]
struct ParseRequest {
    text: String,
}

async fn parse_post(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let body: ParseRequest = json_body(&state, body)?;
    let c = state.copilot.classify(&body.text);
    let ranking: Vec<&IntentScore> = std::iter::once(&c.intent)
        .chain(c.ranking.iter().filter(|s| s.name != c.intent.name))
        .collect();
    Ok(Json(json!({
        "text": body.text,
        "intent": c.intent,
        "intent_ranking": ranking,
        "entities": c.entities.iter().map(|(k, v)| json!({"entity": k, "value": v})).collect::<Vec<_>>(),
    })))
}

//! The Python bridge's endpoints, for the product's backend:
//! `GET /reply/{user_id}?query=` and `GET /context/{user_id}` (what the copilot
//! would see, for debugging). Both need the product's API key and read only
//! that product's users.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppError;
use super::auth::ProductKey;
use crate::dialogue::{Copilot, Reply};
use crate::domain::{UserId, Visitor};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reply/{user_id}", get(reply_get))
        .route("/context/{user_id}", get(context_get))
}

#[derive(Deserialize)]
struct ReplyParams {
    query: Option<String>,
    /// `true`: server-sent events while the answer is written, then `reply`.
    #[serde(default)]
    stream: bool,
}

#[derive(Serialize)]
struct ReplyBody {
    reply: String,
    name: Option<String>,
    has_activity: bool,
}

pub fn parse_user(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).map_err(|source| AppError::InvalidPathId {
        what: "user id",
        source,
    })
}

/// `{reply, name, has_activity}`; with `stream=true`, `bot_stream` events
/// while the answer is written and that body last, as a `reply` event.
async fn reply_get(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path(user_id): Path<String>,
    params: Result<Query<ReplyParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let user = parse_user(&user_id)?;
    let Query(params) = params.map_err(AppError::from_query)?;
    let query = params
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or(AppError::MissingQuery)?;
    state
        .proactive
        .on_user_message(&Visitor::known(product.id.clone(), user.clone()));
    let message = Copilot::reply_message(&product.id, &user, query);
    if !params.stream {
        let reply = Reply::of(state.copilot.handle(&message).await);
        return Ok(Json(ReplyBody::from(reply)).into_response());
    }
    let turn = crate::dialogue::live::run(state.copilot.clone(), message, Default::default());
    Ok(super::live::sse(turn, |result, _| {
        let body = ReplyBody::from(Reply::of(result));
        let body = serde_json::to_value(body).unwrap_or_default();
        vec![super::live::event("reply", &body)]
    })
    .into_response())
}

impl From<Reply> for ReplyBody {
    fn from(reply: Reply) -> Self {
        Self {
            reply: reply.text,
            name: reply.name,
            has_activity: reply.has_activity,
        }
    }
}

#[derive(Serialize)]
struct ContextBody {
    user_id: UserId,
    product_id: crate::domain::ProductId,
    context: String,
    has_activity: bool,
}

async fn context_get(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path(user_id): Path<String>,
) -> Result<Json<ContextBody>, AppError> {
    let user = parse_user(&user_id)?;
    let activity = state.store.user_activity(&product.id, &user);
    Ok(Json(ContextBody {
        context: activity.to_text(),
        has_activity: activity.has_activity(),
        user_id: user,
        product_id: product.id.clone(),
    }))
}

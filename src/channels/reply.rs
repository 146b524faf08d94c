//! The Python bridge's endpoints: `GET /reply/{user_id}?query=` and
//! `GET /context/{user_id}` (what the copilot would see, for debugging).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::state::AppState;
use crate::web::AppError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reply/{user_id}", get(reply_get))
        .route("/context/{user_id}", get(context_get))
}

#[derive(Deserialize)]
struct ReplyParams {
    query: Option<String>,
}

#[derive(Serialize)]
struct ReplyBody {
    reply: String,
    name: Option<String>,
    has_activity: bool,
}

fn parse_user(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).map_err(|e| AppError::BadRequest(format!("user id {e}")))
}

async fn reply_get(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    params: Result<Query<ReplyParams>, QueryRejection>,
) -> Result<Json<ReplyBody>, AppError> {
    let user = parse_user(&user_id)?;
    let Query(params) = params.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let query = params
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| {
            AppError::BadRequest(
                "query parameter `query` is required and must not be empty".to_owned(),
            )
        })?;
    state.proactive.on_user_message(&user);
    let reply = state.copilot.reply(&user, query).await;
    Ok(Json(ReplyBody {
        reply: reply.text,
        name: reply.name,
        has_activity: reply.has_activity,
    }))
}

#[derive(Serialize)]
struct ContextBody {
    user_id: UserId,
    context: String,
    has_activity: bool,
}

async fn context_get(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<ContextBody>, AppError> {
    let user = parse_user(&user_id)?;
    let activity = state.store.user_activity(&user);
    Ok(Json(ContextBody {
        context: activity.to_text(),
        has_activity: activity.has_activity(),
        user_id: user,
    }))
}

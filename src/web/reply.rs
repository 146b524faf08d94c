//! The Python bridge's endpoints, for the product's backend:
//! `GET /reply/{user_id}?query=` and `GET /context/{user_id}` (what the copilot
//! would see, for debugging). Both need the product's API key and read only
//! that product's users.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppError;
use super::auth::ProductKey;
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

async fn reply_get(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path(user_id): Path<String>,
    params: Result<Query<ReplyParams>, QueryRejection>,
) -> Result<Json<ReplyBody>, AppError> {
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
    let reply = state.copilot.reply(&product.id, &user, query).await;
    Ok(Json(ReplyBody {
        reply: reply.text,
        name: reply.name,
        has_activity: reply.has_activity,
    }))
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

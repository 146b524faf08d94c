//! `DELETE /users/{user_id}`: erase one product's user (privacy law's right to
//! erasure). Needs the product's API key; erases that product's user only.

use axum::extract::{Path, State};
use axum::routing::delete;
use axum::{Json, Router};
use serde::Serialize;

use super::AppError;
use super::auth::ProductKey;
use super::reply::parse_user;
use crate::domain::{ProductId, SessionId, UserId};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/users/{user_id}", delete(user_delete))
}

#[derive(Serialize)]
struct ErasedBody {
    product_id: ProductId,
    user_id: UserId,
    erased: ErasedCounts,
}

#[derive(Serialize)]
struct ErasedCounts {
    /// The user's entry in the user index (email, list of sessions).
    user_index: bool,
    sessions: Vec<SessionId>,
    actions: usize,
    summaries: usize,
    conversations: usize,
    proactive_states: usize,
    /// Chat turns the console had recorded.
    console_turns: u64,
}

async fn user_delete(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path(user_id): Path<String>,
) -> Result<Json<ErasedBody>, AppError> {
    let user = parse_user(&user_id)?;
    // The keeper first: if the database (or Redis) cannot erase, nothing is reported
    // erased (503) and the caller retries.
    let sessions = state.store.user_sessions(&product.id, &user);
    let sessions: Vec<SessionId> = sessions.into_iter().map(|(_, s)| s).collect();
    state
        .keeper
        .erase_user(&product.id, &user, &sessions)
        .await
        .map_err(|e| AppError::NotKept(e.into()))?;
    let console_turns = state
        .console
        .turns
        .erase_user(product.id.as_str(), user.as_str())
        .await
        .map_err(AppError::ConsoleStore)?;
    let store = state.store.erase_user(&product.id, &user);
    let conversations = state.copilot.conversations().erase_user(&product.id, &user);
    let proactive_states = state.proactive.forget(&product.id, &store.sessions);
    tracing::info!(product = %product.id, "user data erased");
    Ok(Json(ErasedBody {
        product_id: product.id.clone(),
        user_id: user,
        erased: ErasedCounts {
            user_index: store.user_index,
            sessions: store.sessions,
            actions: store.actions,
            summaries: store.summaries,
            conversations,
            proactive_states,
            console_turns,
        },
    }))
}

//! `GET /healthz`: liveness plus how much the store holds.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(health_get))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    users_tracked: u64,
    sessions_tracked: u64,
}

async fn health_get(State(state): State<AppState>) -> Json<Health> {
    let counts = state.store.counts();
    Json(Health {
        status: "ok",
        users_tracked: counts.users,
        sessions_tracked: counts.sessions,
    })
}

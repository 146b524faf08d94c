//! Chat channels: the ways a question reaches the copilot. Each turns its wire
//! format into typed calls on `dialogue::Copilot`.

pub mod reply;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(reply::routes())
}

//! `GET /metrics`: Prometheus text format.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_get))
}

async fn metrics_get(State(state): State<AppState>) -> impl IntoResponse {
    let counts = state.store.counts();
    state.metrics.store_sessions.set(counts.sessions as i64);
    state.metrics.store_users.set(counts.users as i64);
    state
        .metrics
        .store_actions
        .set(i64::try_from(state.store.action_count()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

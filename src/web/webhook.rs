//! `POST /webhook/{product_id}`: where a PostHog destination delivers events.
//! Order of checks: product (404), body size (413), secret (401), JSON (400),
//! shape (422). The handler authenticates, parses, stores and answers at once.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};

use super::AppError;
use crate::domain::ProductId;
use crate::ingest::{self, Delivered, auth};
use crate::metrics::{Metrics, ReasonLabels};

use crate::state::AppState;

/// After a delivery is stored: count it and let proactive triggers look at it.
pub async fn settle(state: &AppState, product: &ProductId, delivered: &Delivered) {
    let events = &state.metrics.events;
    Metrics::count(events, "accepted", delivered.accepted as u64);
    Metrics::count(events, "ignored", delivered.ignored as u64);
    Metrics::count(events, "duplicate", delivered.duplicates as u64);
    state
        .proactive
        .on_actions(product, &delivered.sessions)
        .await;
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhook/{product_id}", post(webhook_receive))
}

/// Counts a refused delivery by its status, then passes the error on.
pub fn rejected(state: &AppState, error: AppError) -> AppError {
    state
        .metrics
        .rejected
        .get_or_create(&ReasonLabels {
            reason: error.reason().to_owned(),
        })
        .inc();
    error
}

async fn webhook_receive(
    State(state): State<AppState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Delivered>, AppError> {
    receive(&state, path, headers, body)
        .await
        .map_err(|e| rejected(&state, e))
}

async fn receive(
    state: &AppState,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Delivered>, AppError> {
    tracing::Span::current().record("product", product_id.as_str());
    let product = state
        .products
        .find(&product_id)
        .ok_or(AppError::UnknownProduct(product_id))?;
    let body = body.map_err(|r| AppError::from_body(r, state.settings.server.body_limit_bytes))?;

    let presented = headers
        .get(auth::SECRET_HEADER)
        .ok_or(AppError::MissingSecret)?
        .to_str()
        .map_err(|_| AppError::SecretNotText)?;
    // The previous secret still works during its grace period after a rotation.
    if !product
        .webhook_secrets(chrono::Utc::now())
        .any(|secret| auth::verify(secret, presented, &body))
    {
        return Err(AppError::BadSecret(product.id.clone()));
    }
    let product = product.id.clone();

    let events = ingest::parse_body(&body)?;
    let delivered = ingest::deliver(&state.sinks(), &product, &events).await?;
    settle(state, &product, &delivered).await;
    tracing::debug!(
        accepted = delivered.accepted,
        ignored = delivered.ignored,
        duplicates = delivered.duplicates,
        "webhook delivery"
    );
    Ok(Json(delivered))
}

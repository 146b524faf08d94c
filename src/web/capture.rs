//! PostHog-compatible capture, so posthog-js can use this server as `api_host`:
//! `/e/`, `/i/v0/e/`, `/batch/`, `/capture/`, `/track/`, `/engage/`, plus the
//! flags and remote-config requests posthog-js makes at start-up, answered with
//! "no flags, autocapture on, no recordings". Captures land in the same store as
//! webhook deliveries. 4xx for what a retry cannot fix (posthog-js drops those).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppError;
use crate::ingest::{self, capture};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for path in ["/e", "/i/v0/e", "/batch", "/capture", "/track", "/engage"] {
        router = router
            .route(path, post(capture_post).get(capture_post))
            .route(&format!("{path}/"), post(capture_post).get(capture_post));
    }
    for path in ["/flags", "/decide"] {
        router = router
            .route(path, post(flags_post).get(flags_post))
            .route(&format!("{path}/"), post(flags_post).get(flags_post));
    }
    router.route("/array/{token}/{file}", get(remote_config_get))
}

#[derive(Deserialize)]
struct CaptureParams {
    compression: Option<String>,
}

async fn capture_post(
    State(state): State<AppState>,
    params: Query<CaptureParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    capture(&state, params, &headers, body)
        .await
        .map_err(|e| super::webhook::rejected(&state, e))
}

async fn capture(
    state: &AppState,
    Query(params): Query<CaptureParams>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let body = body.map_err(|r| AppError::from_body(r, state.settings.server.body_limit_bytes))?;
    if body.is_empty() {
        return Err(AppError::EmptyCapture);
    }
    let decoded = capture::decode(
        &body,
        params.compression.as_deref(),
        state.settings.capture.max_decoded_bytes,
    )?;
    let token = decoded
        .token
        .as_deref()
        .ok_or(AppError::MissingProjectKey)?;
    let product = state.products.by_posthog_key(token).ok_or_else(|| {
        tracing::warn!(
            token,
            "capture with an unknown project API key; the client will drop it"
        );
        AppError::UnknownProjectKey(token.to_owned())
    })?;
    tracing::Span::current().record("product", product.id.as_str());
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if !product.origin_allowed(origin) {
        return Err(AppError::OriginRefused {
            origin: origin.unwrap_or_default().to_owned(),
            product: product.id.clone(),
        });
    }
    let product = product.id.clone();
    let events =
        ingest::parse_events(decoded.events).map_err(|e| AppError::BadCapture(e.to_string()))?;
    let delivered = ingest::deliver(&state.sinks(), &product, &events).await?;
    super::webhook::settle(state, &product, &delivered).await;
    tracing::debug!(?delivered, "capture");
    Ok(Json(json!({ "status": 1 })))
}

/// What posthog-js needs to run quietly: autocapture on, everything else off.
fn remote_config() -> Value {
    json!({
        "supportedCompression": ["gzip", "gzip-js"],
        "autocapture_opt_out": false,
        "autocaptureExceptions": false,
        "elementsChainAsString": true,
        "sessionRecording": false,
        "heatmaps": false,
        "capturePerformance": false,
        "captureDeadClicks": false,
        "surveys": false,
        "toolbarParams": {},
        "isAuthenticated": false,
        "siteApps": [],
        "defaultIdentifiedOnly": true,
        "hasFeatureFlags": false
    })
}

async fn flags_post() -> Json<Value> {
    let mut answer = remote_config();
    if let Some(map) = answer.as_object_mut() {
        map.insert("flags".into(), json!({}));
        map.insert("featureFlags".into(), json!({}));
        map.insert("featureFlagPayloads".into(), json!({}));
        map.insert("errorsWhileComputingFlags".into(), json!(false));
        map.insert("requestId".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    Json(answer)
}

async fn remote_config_get(
    Path((token, file)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let mut config = remote_config();
    if let Some(map) = config.as_object_mut() {
        map.insert("token".into(), json!(token));
    }
    match file.as_str() {
        "config" => Ok(Json(config).into_response()),
        "config.js" => {
            let token = serde_json::to_string(&token).unwrap_or_default();
            let script = format!(
                "(function(){{window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{{}};\
                 window._POSTHOG_REMOTE_CONFIG[{token}]={{config:{config},siteApps:[]}};}})();"
            );
            Ok(([(header::CONTENT_TYPE, "application/javascript")], script).into_response())
        }
        _ => Err(AppError::NotFound(format!(
            "no remote config file '{file}'"
        ))),
    }
}

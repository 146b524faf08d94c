//! HTTP edge: the router, its layers (request id, trace, CORS, limits, timeout),
//! `AppError` and `AppJson`, and every HTTP handler: ingest (webhook, capture),
//! chat (Rasa REST, `/reply`), the activity stream, onboarding and the admin
//! API, user deletion,
//! health, metrics, static files. Route tables hold no logic.

pub mod assets;
pub mod auth;
pub mod capture;
pub mod console;
pub mod error;
pub mod health;
pub mod json;
pub mod knowledge;
pub mod live;
pub mod metrics;
pub mod products;
pub mod rasa_rest;
pub mod reply;
pub mod stream;
pub mod users;
pub mod webhook;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use socketioxide::layer::SocketIoLayer;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::{AdminRefusal, AppError, ConsoleRefusal};
pub use json::AppJson;

use crate::config::ServerSettings;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP API with its layers.
pub fn router(state: AppState, socket_layer: SocketIoLayer<crate::redis::bus::Adapter>) -> Router {
    let server = &state.settings.server;
    let api = Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(webhook::routes())
        .merge(capture::routes())
        .merge(rasa_rest::routes())
        .merge(reply::routes())
        .merge(products::routes())
        .merge(users::routes())
        .merge(knowledge::routes())
        .merge(console::routes())
        .merge(stream::routes())
        .fallback(assets::static_or_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // IMPORTANT: at capacity, shed load (503 + Retry-After) instead of queueing.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new({
                    // Only the counter: this closure is cloned for every request.
                    let overloaded_total = state.metrics.overloaded.clone();
                    move |_: tower::BoxError| {
                        let overloaded_total = overloaded_total.clone();
                        async move {
                            overloaded_total.inc();
                            overloaded()
                        }
                    }
                }))
                .load_shed()
                // Global: `Router::layer` clones layers per route, and one shared
                // limit is what bounds the server.
                .layer(GlobalConcurrencyLimitLayer::new(
                    server.max_concurrent_requests,
                )),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(server.request_timeout_ms),
        ))
        .layer(DefaultBodyLimit::max(server.body_limit_bytes));

    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings can hold what users typed.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                        product = tracing::field::Empty,
                    )
                })
                // Debug: no info line per request by default (RUST_LOG=tower_http=debug shows them).
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(cors(server));

    // Socket.IO sits outside the timeout (long-polling holds requests open) and
    // inside CORS (browsers poll it cross-origin with credentials).
    api.with_state(state).layer(socket_layer).layer(layers)
}

/// Browsers embed the widget on other origins, with credentials (socket.io-client
/// 2.x polls with `withCredentials`), so the origin is mirrored, never `*`.
fn cors(server: &ServerSettings) -> CorsLayer {
    let origin = if server.cors_allowed_origins.is_empty() {
        AllowOrigin::mirror_request()
    } else {
        let origins: Vec<HeaderValue> = server
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        AllowOrigin::list(origins)
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_credentials(true)
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(Duration::from_secs(3600))
}

fn overloaded() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(serde_json::json!({ "error": "server is at capacity; retry shortly" })),
    )
        .into_response()
}

async fn method_not_allowed(
    method: Method,
    uri: Uri,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({
            "error": format!("{method} is not allowed on {}", uri.path())
        })),
    )
}

//! The team console at `/admin`: the page (static/admin.html with the
//! `console.js` bundle) and its JSON API under `/admin/api/` (contract in
//! docs/console-api.md). Every API call needs a console login; a product
//! login reads only its own product.

mod api;
mod session;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/", get(page))
        .route("/admin/api/login", post(session::login))
        .route("/admin/api/logout", post(session::logout))
        .route("/admin/api/session", get(session::session))
        .route("/admin/api/live", get(api::live))
        .route("/admin/api/live/events", get(api::live_events))
        .route("/admin/api/conversations", get(api::conversations))
        .route("/admin/api/conversations/{id}", get(api::conversation))
        .route("/admin/api/export", get(api::export))
        .route("/admin/api/inbox", get(api::inbox))
        .route("/admin/api/inbox/label", post(api::label))
        .route("/admin/api/stats", get(api::stats))
}

/// The console's shell page. Framing is refused (clickjacking) and only our
/// own scripts run.
async fn page() -> Response {
    let mut response = super::assets::page("admin.html");
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    response.into_response()
}

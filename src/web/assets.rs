//! The demo app and the chat widget, embedded in the binary: pages from
//! `static/`, bundles built by `build.rs` into `$OUT_DIR/web` (served at `/dist/`).
//! Anything else is a JSON 404.

use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::{EmbeddedFile, RustEmbed};

use super::AppError;

#[derive(RustEmbed)]
#[folder = "static/"]
#[exclude = "src/*"]
#[exclude = "dist/*"]
#[exclude = "*.mjs"]
struct Pages;

#[derive(RustEmbed)]
#[folder = "$OUT_DIR/web/"]
struct Bundles;

/// Router fallback: an embedded file for GET/HEAD, else our JSON 404.
pub async fn static_or_not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if method == Method::GET || method == Method::HEAD {
        let file = match path.trim_start_matches('/') {
            "" => Pages::get("index.html"),
            p => match p.strip_prefix("dist/") {
                Some(bundle) => Bundles::get(bundle),
                None => Pages::get(p),
            },
        };
        if let Some(file) = file {
            return serve(file);
        }
    }
    AppError::NotFound(format!("no route for {method} {path}")).into_response()
}

/// One of `static/`'s pages by name, or our JSON 404.
pub fn page(name: &str) -> Response {
    match Pages::get(name) {
        Some(file) => serve(file),
        None => AppError::NotFound(format!("{name} is not built in")).into_response(),
    }
}

fn serve(file: EmbeddedFile) -> Response {
    let mime = file.metadata.mimetype().to_owned();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            // Small files, rebuilt with the binary: always revalidate.
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

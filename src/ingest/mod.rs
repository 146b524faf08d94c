//! Ingest: PostHog webhook bodies in, typed events and human-readable actions out.
//! Pure functions over bytes; the HTTP edge does auth and storage.

pub mod action;
pub mod auth;
pub mod canonical_url;
pub mod elements_chain;
pub mod event;

pub use action::{Classified, classify};
pub use event::{Event, parse_body};

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// JSON, but not one of the accepted shapes; `path` names the failing place.
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

impl Error {
    fn shape(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Shape {
            path: path.into(),
            message: message.into(),
        }
    }
}

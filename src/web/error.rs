//! The one error type HTTP handlers return: status from one exhaustive match,
//! body `{"error": "..."}`. 4xx messages are shown; 5xx are logged, not shown.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ingest;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such product, user or route.
    #[error("{0}")]
    NotFound(String),
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The body is larger than `server.body_limit_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Unreadable input: bad JSON, missing parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input of the wrong shape.
    #[error("{0}")]
    Unprocessable(String),
    /// A bug or an outage on our side; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// Maps axum's body rejection, keeping our error shape.
    pub fn from_body(rejection: BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::BadRequest(format!(
                "could not read the body: {}",
                rejection.body_text()
            ))
        }
    }

    /// A short machine-readable reason, for metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            AppError::NotFound(_) => "not_found",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::PayloadTooLarge { .. } => "too_large",
            AppError::BadRequest(_) => "bad_request",
            AppError::Unprocessable(_) => "unprocessable",
            AppError::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ingest::Error> for AppError {
    fn from(error: ingest::Error) -> Self {
        match error {
            ingest::Error::MalformedJson(_) => AppError::BadRequest(error.to_string()),
            ingest::Error::Shape { .. } => AppError::Unprocessable(error.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let AppError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        } else {
            tracing::debug!(%status, error = %self, "request refused");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

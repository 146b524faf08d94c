//! The one error type HTTP handlers return: typed variants, status from one
//! exhaustive match, body `{"error": "..."}`. 4xx messages are shown; 5xx are
//! logged once and not shown.

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::{IdError, ProductId};
use crate::ingest::{self, capture::CaptureError};
use crate::products;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No product with this id (webhook paths).
    #[error("unknown product '{0}'")]
    UnknownProduct(String),
    /// No such route or file.
    #[error("{0}")]
    NotFound(String),
    /// A webhook without `X-PostHog-Secret`.
    #[error("missing X-PostHog-Secret header")]
    MissingSecret,
    /// `X-PostHog-Secret` is not visible ASCII.
    #[error("X-PostHog-Secret is not valid text")]
    SecretNotText,
    /// The secret (or its HMAC) does not match the product's.
    #[error("X-PostHog-Secret does not match the secret of product '{0}'")]
    BadSecret(ProductId),
    /// A product endpoint without `Authorization: Bearer <api_key>`.
    #[error("this endpoint needs `Authorization: Bearer <api_key>` (the product's API key)")]
    MissingApiKey,
    /// A bearer token that is no product's API key.
    #[error("the API key is not valid")]
    BadApiKey,
    /// Who may call an admin endpoint, and how to become them.
    #[error("the stream needs `Authorization: Bearer <stream key>` (unkey_key from onboarding)")]
    MissingStreamKey,
    #[error("the stream key is not valid for product '{0}'")]
    BadStreamKey(ProductId),
    #[error("{0}")]
    TooManySubscribers(String),
    #[error("{0}")]
    Admin(AdminRefusal),
    /// A browser origin not in the product's `allowed_origins`.
    #[error("origin '{origin}' is not allowed for product '{product}'")]
    OriginRefused { origin: String, product: ProductId },
    /// Registering an id that is taken, without `force_reregister`.
    #[error(
        "product '{0}' is already registered; send force_reregister: true with the admin token \
         or the product's api_key to rotate its webhook secret"
    )]
    ProductExists(ProductId),
    /// An id in the path that is not one.
    #[error("{what} {source}")]
    InvalidPathId { what: &'static str, source: IdError },
    /// A field of a JSON body with a value we refuse.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    /// `/reply` without `query`.
    #[error("query parameter `query` is required and must not be empty")]
    MissingQuery,
    /// A query string that does not parse.
    #[error("{0}")]
    BadQuery(String),
    /// A webhook body we cannot use.
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    /// A capture body we cannot decode.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Capture events that do not parse (posthog-js drops a 400 for good).
    #[error("{0}")]
    BadCapture(String),
    /// A capture with no body.
    #[error("empty capture body")]
    EmptyCapture,
    /// A capture without a project token.
    #[error("no project API key (api_key or token) in the capture")]
    MissingProjectKey,
    /// A capture whose token is no product's `posthog_api_key`.
    #[error("unknown project API key '{0}': set products[].posthog_api_key")]
    UnknownProjectKey(String),
    /// The body is larger than `server.body_limit_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body could not be read.
    #[error("could not read the body: {0}")]
    Body(String),
    /// The body is not JSON.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// JSON of the wrong shape; `path` names the failing place.
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
    /// A product operation refused (not found, exists, bad email) or failed.
    #[error(transparent)]
    Products(#[from] products::Error),
    /// A help page the database or the index could not take: 503, retry.
    #[error("knowledge: {0}")]
    Knowledge(String),
    /// A console request refused.
    #[error("{0}")]
    Console(ConsoleRefusal),
    /// The console's records could not be read or written: 503, retry.
    #[error("console: {0}")]
    ConsoleStore(String),
    /// An accepted delivery the database could not keep: 503, retry.
    #[error(transparent)]
    NotKept(#[from] ingest::NotKept),
}

/// Why an admin or onboarding call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    /// An admin endpoint without (or with a wrong) admin token.
    #[error("this endpoint needs `Authorization: Bearer <admin token>` ([admin] token)")]
    NeedsAdmin,
    /// Registration needs a token, and none is configured.
    #[error(
        "product registration is closed: set [admin] token (env COPILOT__ADMIN__TOKEN) and send \
         it as `Authorization: Bearer <token>`, or set [admin] open_registration = true \
         (env COPILOT__ADMIN__OPEN_REGISTRATION=true) to let new products register without one"
    )]
    RegistrationClosed,
    /// Changing an existing product without its key or the admin token.
    #[error(
        "changing product '{0}' needs `Authorization: Bearer <admin token or the product's api_key>`"
    )]
    NeedsOwner(ProductId),
    /// A bearer token that is neither the admin token nor any product's key.
    #[error("the bearer token is not valid")]
    BadToken,
}

/// Why a console request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleRefusal {
    #[error("log in to the console first (POST /admin/api/login)")]
    NotLoggedIn,
    #[error("wrong credentials")]
    WrongCredentials,
    #[error("missing or wrong X-CSRF-Token header")]
    BadCsrf,
    #[error("cross-site requests are refused")]
    CrossSite,
    #[error("too many login attempts; wait a minute")]
    TooManyLogins,
}

impl AppError {
    /// Maps axum's body rejection, keeping our error shape.
    pub fn from_body(rejection: BytesRejection, limit: usize) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge { limit }
        } else {
            AppError::Body(rejection.body_text())
        }
    }

    pub fn from_query(rejection: QueryRejection) -> Self {
        AppError::BadQuery(rejection.body_text())
    }

    /// A short machine-readable reason, for metrics labels (a closed set).
    pub fn reason(&self) -> &'static str {
        match self.status() {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::CONFLICT => "conflict",
            StatusCode::TOO_MANY_REQUESTS => "too_many",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AppError::UnknownProduct(_) | AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MissingSecret
            | AppError::SecretNotText
            | AppError::BadSecret(_)
            | AppError::MissingApiKey
            | AppError::BadApiKey
            | AppError::MissingProjectKey
            | AppError::MissingStreamKey
            | AppError::BadStreamKey(_)
            | AppError::UnknownProjectKey(_) => StatusCode::UNAUTHORIZED,
            AppError::TooManySubscribers(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Admin(refusal) => match refusal {
                AdminRefusal::RegistrationClosed => StatusCode::FORBIDDEN,
                AdminRefusal::NeedsAdmin | AdminRefusal::NeedsOwner(_) | AdminRefusal::BadToken => {
                    StatusCode::UNAUTHORIZED
                }
            },
            AppError::OriginRefused { .. } => StatusCode::FORBIDDEN,
            AppError::ProductExists(_) => StatusCode::CONFLICT,
            AppError::InvalidPathId { .. }
            | AppError::MissingQuery
            | AppError::BadQuery(_)
            | AppError::EmptyCapture
            | AppError::BadCapture(_)
            | AppError::Body(_)
            | AppError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            AppError::InvalidField { .. } | AppError::Shape { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Ingest(ingest::Error::MalformedJson(_)) => StatusCode::BAD_REQUEST,
            AppError::Ingest(ingest::Error::Shape { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Capture(CaptureError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Capture(_) => StatusCode::BAD_REQUEST,
            AppError::Products(error) => match error {
                products::Error::Exists(_) => StatusCode::CONFLICT,
                products::Error::NotFound(_) => StatusCode::NOT_FOUND,
                products::Error::InvalidEmail | products::Error::WeakSecret => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                products::Error::Store(products::StoreError::Conflict(_)) => StatusCode::CONFLICT,
                products::Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            AppError::Console(refusal) => match refusal {
                ConsoleRefusal::NotLoggedIn | ConsoleRefusal::WrongCredentials => {
                    StatusCode::UNAUTHORIZED
                }
                ConsoleRefusal::BadCsrf | ConsoleRefusal::CrossSite => StatusCode::FORBIDDEN,
                ConsoleRefusal::TooManyLogins => StatusCode::TOO_MANY_REQUESTS,
            },
            AppError::NotKept(_) | AppError::Knowledge(_) | AppError::ConsoleStore(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Once, with the detail; the client gets no internals.
            tracing::error!(error = %self, "request failed");
            let message = match status {
                StatusCode::SERVICE_UNAVAILABLE => "temporarily unavailable; retry shortly",
                _ => "internal error",
            };
            return (
                status,
                [(header::RETRY_AFTER, "1")],
                Json(json!({ "error": message })),
            )
                .into_response();
        }
        tracing::debug!(%status, error = %self, "request refused");
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

//! `AppJson<T>`: a JSON body extractor whose rejections are our `AppError`
//! (`{"error"}` naming the failing field via serde_path_to_error). Bodies are
//! parsed whatever the Content-Type, as Rasa's channels do (widgets send
//! text/plain to avoid a CORS preflight).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::AppError;
use crate::state::AppState;

pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, AppError> {
        let limit = state.settings.server.body_limit_bytes;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|r| AppError::from_body(r, limit))?;
        parse(&body).map(AppJson)
    }
}

/// Parses `body`, naming the failing place on a shape error.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::MalformedJson(inner.to_string())
        } else {
            AppError::Shape {
                path,
                message: inner.to_string(),
            }
        }
    })
}

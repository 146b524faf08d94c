//! Who is calling: the admin token or a product's API key, from
//! `Authorization: Bearer …`. Comparisons are of digests (constant-time);
//! extractors reject with our `AppError`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppError;
use crate::products::{KeyDigest, Product};
use crate::state::AppState;

/// The token after `Bearer ` (any case), if the header has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whoever the bearer token says the caller is.
#[derive(Clone)]
pub enum Caller {
    /// The `[admin] token`.
    Admin,
    /// A product's API key.
    Product(Arc<Product>),
    /// No token.
    Anonymous,
    /// A token that is neither.
    Invalid,
}

impl Caller {
    pub fn of(state: &AppState, headers: &HeaderMap) -> Self {
        let Some(token) = bearer(headers) else {
            return Caller::Anonymous;
        };
        if let Some(admin) = state.settings.admin.token()
            && KeyDigest::of(admin).matches(token)
        {
            return Caller::Admin;
        }
        match state.products.by_api_key(token) {
            Some(product) => Caller::Product(product),
            None => Caller::Invalid,
        }
    }

    /// The admin, or the named product's own key.
    pub fn owns(&self, product: &crate::domain::ProductId) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Product(p) => &p.id == product,
            Caller::Anonymous | Caller::Invalid => false,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller::of(state, &parts.headers))
    }
}

/// A request made with a product's API key; everything it reads is that
/// product's. 401 without one.
pub struct ProductKey(pub Arc<Product>);

impl FromRequestParts<AppState> for ProductKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers).ok_or(AppError::MissingApiKey)?;
        let product = state
            .products
            .by_api_key(token)
            .ok_or(AppError::BadApiKey)?;
        tracing::Span::current().record("product", product.id.as_str());
        Ok(ProductKey(product))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens_are_read_in_any_case_and_others_are_not() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer   ", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer(&headers), expected, "{value:?}");
        }
    }
}

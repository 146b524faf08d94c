//! Console logins: `POST /admin/api/login` with the admin token, or a
//! product's id and API key, sets an HttpOnly, SameSite=Strict cookie holding
//! a random token (the database keeps only its digest). Every request that
//! changes something must also carry the login's CSRF token in
//! `X-CSRF-Token`; logins themselves are refused from other sites.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::SecureCookie;
use crate::console::Scope;
use crate::db::StoredLogin;
use crate::products::{KeyDigest, Product, keys};
use crate::state::AppState;
use crate::web::{AppError, AppJson, ConsoleRefusal};

pub const COOKIE: &str = "copilot_console";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A logged-in console user, checked against the database on each request.
pub struct ConsoleLogin {
    /// The admin: `None`; a product login: its product.
    pub product: Option<Arc<Product>>,
    pub csrf: String,
    token_digest: String,
    /// To tell the admin's "no such product" from an empty one.
    products: crate::products::Products,
}

impl ConsoleLogin {
    /// The scope a request's `product` parameter names, if this login may
    /// read it; another product's is "no such product", as one that does not
    /// exist (a product login must not learn which others exist).
    pub fn scope(&self, requested: Option<&str>) -> Result<Scope, AppError> {
        let requested = requested.map(str::trim).filter(|p| !p.is_empty());
        let no_such = || AppError::NotFound("no such product".to_owned());
        match (&self.product, requested) {
            (None, None) => Ok(Scope::All),
            (None, Some(raw)) => self
                .products
                .find(raw)
                .map(|p| Scope::Product(p.id.clone()))
                .ok_or_else(no_such),
            (Some(own), None) => Ok(Scope::Product(own.id.clone())),
            (Some(own), Some(raw)) if raw == own.id.as_str() => Ok(Scope::Product(own.id.clone())),
            (Some(_), Some(_)) => Err(no_such()),
        }
    }
}

impl FromRequestParts<AppState> for ConsoleLogin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        // IMPORTANT: CORS is server-wide (widgets poll from any origin, with
        // credentials), and SameSite lets a sibling subdomain's requests carry
        // the cookie: the console's API answers its own origin only.
        if cross_site(&parts.headers) {
            return Err(AppError::Console(ConsoleRefusal::CrossSite));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(AppError::Console(ConsoleRefusal::NotLoggedIn))?;
        let token_digest = KeyDigest::of(&token).to_hex();
        let login = state
            .console
            .logins
            .get(&token_digest, now_ms())
            .await
            .map_err(|e| AppError::ConsoleStore(e.to_string()))?
            .ok_or(AppError::Console(ConsoleRefusal::NotLoggedIn))?;
        let product = match &login.product {
            None => None,
            // A product removed since the login ends it.
            Some(id) => Some(
                state
                    .products
                    .find(id)
                    .ok_or(AppError::Console(ConsoleRefusal::NotLoggedIn))?,
            ),
        };
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ok: bool = presented.as_bytes().ct_eq(login.csrf.as_bytes()).into();
            if !ok || presented.is_empty() {
                return Err(AppError::Console(ConsoleRefusal::BadCsrf));
            }
        }
        Ok(ConsoleLogin {
            product,
            csrf: login.csrf,
            token_digest,
            products: state.products.clone(),
        })
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    token: Option<String>,
    product: Option<String>,
    api_key: Option<String>,
}

/// What the console knows about its login.
#[derive(Serialize)]
pub struct SessionBody {
    role: &'static str,
    product: Option<String>,
    products: Vec<String>,
    csrf: String,
}

fn session_body(state: &AppState, product: Option<&Product>, csrf: &str) -> SessionBody {
    let (role, products) = match product {
        Some(p) => ("product", vec![p.id.as_str().to_owned()]),
        None => {
            let mut all: Vec<String> = state
                .products
                .all()
                .iter()
                .map(|p| p.id.as_str().to_owned())
                .collect();
            all.sort();
            ("admin", all)
        }
    };
    SessionBody {
        role,
        product: product.map(|p| p.id.as_str().to_owned()),
        products,
        csrf: csrf.to_owned(),
    }
}

/// Whether the browser says the request came from another origin (another
/// site, or a sibling subdomain): the console is same-origin only, its login
/// form included (login CSRF).
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => url::Url::parse(origin).ok().is_none_or(|url| {
            let origin_host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            !origin_host.eq_ignore_ascii_case(host)
        }),
        _ => false,
    }
}

/// Secure unless configured off, or (auto) the console is reached on a
/// loopback host, where browsers accept plain-http cookies for local use.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    match state.settings.console.secure_cookie {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let name = match host.rsplit_once(':') {
                Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
                _ => host,
            };
            let name = name.trim_start_matches('[').trim_end_matches(']');
            let loopback = name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            !loopback
        }
    }
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    AppJson(body): AppJson<LoginBody>,
) -> Result<(CookieJar, Json<SessionBody>), AppError> {
    if cross_site(&headers) {
        return Err(AppError::Console(ConsoleRefusal::CrossSite));
    }
    // Counted per target before anything is compared: guessing is slow.
    let target = match &body.product {
        None => "admin".to_owned(),
        Some(id) => match state.products.find(id.trim()) {
            Some(product) => format!("product:{}", product.id.as_str()),
            None => "unknown product".to_owned(),
        },
    };
    if state.console.logins_allowed.check_key(&target).is_err() {
        return Err(AppError::Console(ConsoleRefusal::TooManyLogins));
    }
    let wrong = || AppError::Console(ConsoleRefusal::WrongCredentials);
    let product = match (&body.token, &body.product, &body.api_key) {
        (Some(token), None, None) => {
            let admin = state.settings.admin.token().ok_or_else(wrong)?;
            if !KeyDigest::of(admin).matches(token) {
                return Err(wrong());
            }
            None
        }
        (None, Some(id), Some(key)) => {
            let product = state.products.by_api_key(key).ok_or_else(wrong)?;
            // Constant time is the key's; the id is not a secret.
            if product.id.as_str() != id.trim() {
                return Err(wrong());
            }
            Some(product)
        }
        _ => {
            return Err(AppError::InvalidField {
                field: "login",
                message: "send either {token} (the admin token) or {product, api_key}".to_owned(),
            });
        }
    };
    let token = keys::generate("ccs_");
    let csrf = keys::generate("");
    let hours = state.settings.console.session_hours.max(1);
    let login = StoredLogin {
        product: product.as_ref().map(|p| p.id.as_str().to_owned()),
        csrf: csrf.clone(),
        expires_at_ms: now_ms() + i64::try_from(hours * 3_600_000).unwrap_or(i64::MAX / 2),
    };
    state
        .console
        .logins
        .create(&KeyDigest::of(&token).to_hex(), &login)
        .await
        .map_err(|e| AppError::ConsoleStore(e.to_string()))?;
    let cookie = Cookie::build((COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/admin")
        // No Max-Age: the login ends with the browser or its expiry, whichever is first.
        .secure(secure(&state, &headers));
    let body = session_body(&state, product.as_deref(), &csrf);
    Ok((jar.add(cookie), Json(body)))
}

pub async fn session(State(state): State<AppState>, login: ConsoleLogin) -> Json<SessionBody> {
    Json(session_body(&state, login.product.as_deref(), &login.csrf))
}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    login: ConsoleLogin,
) -> Result<(CookieJar, StatusCode), AppError> {
    state
        .console
        .logins
        .delete(&login.token_digest)
        .await
        .map_err(|e| AppError::ConsoleStore(e.to_string()))?;
    let gone = Cookie::build((COOKIE, "")).path("/admin");
    Ok((jar.remove(gone), StatusCode::NO_CONTENT))
}

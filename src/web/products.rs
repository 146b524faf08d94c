//! Onboarding and the admin API for products. `POST /products` is the hosted
//! Autoplay connector's contract (so autoplay-sdk's `onboard_product` works
//! unchanged); the rest manage a product by id. Who may do what:
//! - a new product: the admin token, or anyone when `[admin] open_registration`;
//! - re-registering, rotating, reading or changing one: the admin token or that
//!   product's api_key — never open;
//! - listing every product and removing one: the admin token.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{AdminRefusal, AppError, AppJson};
use crate::domain::{ForwardUrl, ProductId};
use crate::products::{Credentials, Forward, Product, Registration, Rotation};
use crate::state::AppState;
use crate::stream::check_forward_url;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/products", post(product_register).get(products_list))
        .route(
            "/products/{product_id}",
            get(product_get)
                .patch(product_update)
                .delete(product_remove),
        )
        .route("/products/{product_id}/rotate", post(product_rotate))
}

/// The connector's registration body. Unknown fields (`integration_type`,
/// `integration_config`, `key_name`, …) are accepted and ignored.
#[derive(Deserialize)]
struct RegisterBody {
    product_id: String,
    #[serde(default)]
    contact_email: Option<String>,
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    force_reregister: bool,
    /// Push delivery; the SDK always sends both empty (no push).
    #[serde(default)]
    forward_url: Option<String>,
    #[serde(default)]
    forward_secret: Option<String>,
}

/// What onboarding answers: the connector's fields plus ours. Keys are shown
/// once; a key that was not issued by this call is `null`.
#[derive(Serialize)]
pub struct Onboarded {
    pub product_id: ProductId,
    pub webhook_url: String,
    pub webhook_secret: Option<String>,
    pub stream_url: String,
    /// The stream key, under the connector's name for it…
    pub unkey_key: Option<String>,
    /// …and under ours.
    pub stream_key: Option<String>,
    pub unkey_key_id: Option<String>,
    pub api_key: Option<String>,
    pub identity_secret: Option<String>,
    pub posthog_api_key: Option<String>,
    /// The connector's field; we never write to a second destination.
    pub dual_write: bool,
}

impl Onboarded {
    pub fn new(base_url: &str, product: &ProductId, credentials: Credentials) -> Self {
        Self {
            webhook_url: format!("{base_url}/webhook/{product}"),
            stream_url: format!("{base_url}/stream/{product}"),
            product_id: product.clone(),
            webhook_secret: credentials.webhook_secret,
            unkey_key: credentials.stream_key.clone(),
            stream_key: credentials.stream_key,
            unkey_key_id: credentials.stream_key_id,
            api_key: credentials.api_key,
            identity_secret: credentials.identity_secret,
            posthog_api_key: credentials.posthog_api_key,
            dual_write: false,
        }
    }
}

/// `[admin] public_url`, else the request's own scheme and host.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let configured = state.settings.admin.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let scheme = text("x-forwarded-proto")
        .filter(|p| matches!(*p, "http" | "https"))
        .unwrap_or("http");
    match text(header::HOST.as_str()) {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("http://{}", state.settings.address()),
    }
}

fn parse_product_id(raw: &str) -> Result<ProductId, AppError> {
    ProductId::parse(raw).map_err(|e| AppError::InvalidField {
        field: "product_id",
        message: format!("{e}; use 1-64 characters of a-z, 0-9, '-' or '_'"),
    })
}

/// A `forward_url` (and its secret) from a request body: `None` when absent,
/// `Some(None)` when empty (no push), else checked against SSRF.
async fn parse_forward(
    state: &AppState,
    url: Option<String>,
    secret: Option<String>,
) -> Result<Option<Option<Forward>>, AppError> {
    let Some(url) = url else {
        return Ok(None);
    };
    if url.trim().is_empty() {
        return Ok(Some(None));
    }
    let invalid = |e: crate::domain::UrlError| AppError::InvalidField {
        field: "forward_url",
        message: e.to_string(),
    };
    let url = ForwardUrl::parse(&url).map_err(invalid)?;
    check_forward_url(&url, state.settings.stream.allow_private_forward)
        .await
        .map_err(invalid)?;
    Ok(Some(Some(Forward { url, secret })))
}

fn require_owner(caller: &Caller, product: &ProductId) -> Result<(), AppError> {
    match caller {
        _ if caller.owns(product) => Ok(()),
        Caller::Invalid => Err(AppError::Admin(AdminRefusal::BadToken)),
        _ => Err(AppError::Admin(AdminRefusal::NeedsOwner(product.clone()))),
    }
}

fn require_admin(caller: &Caller) -> Result<(), AppError> {
    match caller {
        Caller::Admin => Ok(()),
        _ => Err(AppError::Admin(AdminRefusal::NeedsAdmin)),
    }
}

async fn product_register(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    AppJson(body): AppJson<RegisterBody>,
) -> Result<(StatusCode, Json<Onboarded>), AppError> {
    let id = parse_product_id(&body.product_id)?;
    let forward = parse_forward(&state, body.forward_url, body.forward_secret)
        .await?
        .flatten();
    // The store, not the in-memory snapshot: the CLI may have just added it.
    let exists = state.products.fetch(&id).await?.is_some();
    let credentials = if exists {
        if !body.force_reregister {
            return Err(AppError::ProductExists(id));
        }
        require_owner(&caller, &id)?;
        // Only a given forward_url changes push delivery: the SDK always
        // sends an empty one, which must not turn it off.
        if let Some(forward) = forward {
            state
                .products
                .update(
                    &id,
                    crate::products::Changes {
                        forward: Some(Some(forward)),
                        ..Default::default()
                    },
                )
                .await?;
        }
        // The SDK requires a stream key in the answer, and only digests are
        // kept, so re-registration issues a new one with the new secret.
        state
            .products
            .rotate(
                &id,
                Rotation {
                    webhook_secret: body.webhook_secret,
                    stream_key: true,
                    ..Rotation::default()
                },
            )
            .await?
    } else {
        match (&caller, state.settings.admin.open_registration) {
            (Caller::Admin, _) => {}
            (Caller::Invalid, _) => return Err(AppError::Admin(AdminRefusal::BadToken)),
            (_, true) => {}
            (_, false) if state.settings.admin.token().is_some() => {
                return Err(AppError::Admin(AdminRefusal::NeedsAdmin));
            }
            (_, false) => return Err(AppError::Admin(AdminRefusal::RegistrationClosed)),
        }
        let contact_email = body
            .contact_email
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| AppError::InvalidField {
                field: "contact_email",
                message: "is required".to_owned(),
            })?;
        state
            .products
            .register(Registration {
                id: id.clone(),
                contact_email,
                webhook_secret: body.webhook_secret,
                forward,
            })
            .await
            .map_err(|e| match e {
                crate::products::Error::Exists(id) => AppError::ProductExists(id),
                other => other.into(),
            })?
    };
    // Push delivery starts (or stops) now, not at the next refresh.
    state.forwarders.sync(&state.shutdown);
    let onboarded = Onboarded::new(&base_url(&state, &headers), &id, credentials);
    Ok((StatusCode::CREATED, Json(onboarded)))
}

/// A product as the admin API shows it: no secrets, only whether keys exist.
#[derive(Serialize)]
pub struct ProductView {
    product_id: ProductId,
    contact_email: Option<String>,
    webhook_url: String,
    stream_url: String,
    stream_key_id: Option<String>,
    has_api_key: bool,
    has_stream_key: bool,
    has_identity_secret: bool,
    identity_required: bool,
    posthog_api_key: Option<String>,
    allowed_origins: Vec<String>,
    /// Where the stream is pushed, and whether pushes are signed.
    forward_url: Option<String>,
    has_forward_secret: bool,
    /// When the webhook secret replaced by the last rotation stops working.
    previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl ProductView {
    pub fn new(base_url: &str, p: &Product) -> Self {
        Self {
            webhook_url: format!("{base_url}/webhook/{}", p.id),
            stream_url: format!("{base_url}/stream/{}", p.id),
            product_id: p.id.clone(),
            contact_email: p.contact_email.clone(),
            stream_key_id: p.stream_key_id.clone(),
            has_api_key: p.api_key.is_some(),
            has_stream_key: p.stream_key.is_some(),
            has_identity_secret: p.identity_secret.is_some(),
            identity_required: p.identity_required,
            posthog_api_key: p.posthog_api_key.clone(),
            allowed_origins: p.allowed_origins.clone(),
            forward_url: p.forward_url.as_ref().map(|u| u.to_string()),
            has_forward_secret: p.forward_secret.is_some(),
            previous_secret_expires_at: p.previous_webhook_secret.as_ref().map(|s| s.expires_at),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

async fn products_list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<Vec<ProductView>>, AppError> {
    let base = base_url(&state, &headers);
    let visible: Vec<Product> = match &caller {
        Caller::Admin => state.products.list().await?,
        // A product's key lists that product alone.
        Caller::Product(p) => vec![Product::clone(p)],
        Caller::Invalid => return Err(AppError::Admin(AdminRefusal::BadToken)),
        Caller::Anonymous => return Err(AppError::Admin(AdminRefusal::NeedsAdmin)),
    };
    Ok(Json(
        visible.iter().map(|p| ProductView::new(&base, p)).collect(),
    ))
}

async fn owned_product(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Product, AppError> {
    let id = parse_product_id(raw_id)?;
    require_owner(caller, &id)?;
    state
        .products
        .fetch(&id)
        .await?
        .ok_or(AppError::Products(crate::products::Error::NotFound(id)))
}

async fn product_get(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(product_id): Path<String>,
) -> Result<Json<ProductView>, AppError> {
    let product = owned_product(&state, &caller, &product_id).await?;
    Ok(Json(ProductView::new(
        &base_url(&state, &headers),
        &product,
    )))
}

/// The settings a product's owner may change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    contact_email: Option<String>,
    #[serde(default)]
    identity_required: Option<bool>,
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
    /// Empty turns push delivery off.
    #[serde(default)]
    forward_url: Option<String>,
    #[serde(default)]
    forward_secret: Option<String>,
}

async fn product_update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(product_id): Path<String>,
    AppJson(body): AppJson<UpdateBody>,
) -> Result<Json<ProductView>, AppError> {
    let product = owned_product(&state, &caller, &product_id).await?;
    let forward = match (body.forward_url, body.forward_secret) {
        // A new secret alone keeps the URL.
        (None, Some(secret)) => product.forward_url.clone().map(|url| {
            Some(Forward {
                url,
                secret: Some(secret),
            })
        }),
        (url, secret) => parse_forward(&state, url, secret).await?,
    };
    let updated = state
        .products
        .update(
            &product.id,
            crate::products::Changes {
                contact_email: body.contact_email,
                identity_required: body.identity_required,
                allowed_origins: body.allowed_origins,
                forward,
            },
        )
        .await?;
    state.forwarders.sync(&state.shutdown);
    Ok(Json(ProductView::new(
        &base_url(&state, &headers),
        &updated,
    )))
}

/// Which keys to re-issue; the webhook secret always is.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    webhook_secret: Option<String>,
    #[serde(default)]
    stream_key: bool,
    #[serde(default)]
    api_key: bool,
    #[serde(default)]
    identity_secret: bool,
    #[serde(default)]
    posthog_api_key: bool,
}

async fn product_rotate(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(product_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Onboarded>, AppError> {
    let id = parse_product_id(&product_id)?;
    require_owner(&caller, &id)?;
    // No body: rotate the webhook secret only.
    let body: RotateBody = if body.trim_ascii().is_empty() {
        RotateBody::default()
    } else {
        super::json::parse(&body)?
    };
    let credentials = state
        .products
        .rotate(
            &id,
            Rotation {
                webhook_secret: body.webhook_secret,
                stream_key: body.stream_key,
                api_key: body.api_key,
                identity_secret: body.identity_secret,
                posthog_api_key: body.posthog_api_key,
            },
        )
        .await?;
    Ok(Json(Onboarded::new(
        &base_url(&state, &headers),
        &id,
        credentials,
    )))
}

async fn product_remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(product_id): Path<String>,
) -> Result<StatusCode, AppError> {
    require_admin(&caller)?;
    let id = parse_product_id(&product_id)?;
    state.products.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

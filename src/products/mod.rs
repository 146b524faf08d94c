//! Products: the apps whose events we ingest and whose users we answer. The
//! `Product` record, issuing and rotating its keys, seeding from the config
//! file, and the in-memory registry every request reads. One code path for
//! the CLI, `POST /products` and the config file; storage sits behind
//! [`ProductStore`]. Knows nothing of HTTP or SQL.

pub mod keys;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

pub use keys::KeyDigest;
pub use store::{ProductStore, StoreError};

use crate::config::ProductSettings;
use crate::domain::{ForwardUrl, ProductId};

/// A product as stored. Secrets needed for HMACs are kept; keys that are only
/// compared are digests.
#[derive(Debug, Clone)]
pub struct Product {
    pub id: ProductId,
    pub contact_email: Option<String>,
    pub webhook_secret: SecretString,
    /// The secret before the last rotation, accepted until it expires.
    pub previous_webhook_secret: Option<PreviousSecret>,
    pub stream_key_id: Option<String>,
    pub stream_key: Option<KeyDigest>,
    pub api_key: Option<KeyDigest>,
    pub identity_secret: Option<SecretString>,
    /// Unverified chat users are anonymous visitors.
    pub identity_required: bool,
    pub posthog_api_key: Option<String>,
    /// Browser origins allowed for sockets and captures; empty = any.
    pub allowed_origins: Vec<String>,
    /// Where stream payloads are pushed, signed with `forward_secret`.
    pub forward_url: Option<ForwardUrl>,
    pub forward_secret: Option<SecretString>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PreviousSecret {
    pub secret: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl Product {
    /// The webhook secrets that authenticate a delivery at `now`: the current
    /// one, and the previous one during its grace period.
    pub fn webhook_secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        std::iter::once(self.webhook_secret.expose_secret()).chain(
            self.previous_webhook_secret
                .as_ref()
                .filter(|p| now < p.expires_at)
                .map(|p| p.secret.expose_secret()),
        )
    }

    /// A browser origin may use this product: the list is empty, or holds it.
    /// A request without an Origin (a server, same-origin polling) is not a
    /// browser on another site, and is allowed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(origin) => {
                self.allowed_origins.is_empty()
                    || self
                        .allowed_origins
                        .iter()
                        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
            }
        }
    }

    /// A product with a name of its own and nothing else set.
    fn new(id: ProductId, webhook_secret: String, now: DateTime<Utc>) -> Self {
        Self {
            id,
            contact_email: None,
            webhook_secret: webhook_secret.into(),
            previous_webhook_secret: None,
            stream_key_id: None,
            stream_key: None,
            api_key: None,
            identity_secret: None,
            identity_required: false,
            posthog_api_key: None,
            allowed_origins: Vec::new(),
            forward_url: None,
            forward_secret: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Keys in clear, shown once when issued (only what was issued this time).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub webhook_secret: Option<String>,
    pub stream_key: Option<String>,
    pub stream_key_id: Option<String>,
    pub api_key: Option<String>,
    pub identity_secret: Option<String>,
    pub posthog_api_key: Option<String>,
}

/// A new product.
#[derive(Debug, Clone)]
pub struct Registration {
    pub id: ProductId,
    pub contact_email: String,
    /// The caller's own webhook secret; one is generated when absent.
    pub webhook_secret: Option<String>,
    /// Push delivery, if wanted (checked for SSRF at the edge).
    pub forward: Option<Forward>,
}

/// Push delivery of the stream: the URL, and the secret payloads are signed
/// with (`None`: unsigned; the SDK's receiver then accepts any body).
#[derive(Debug, Clone)]
pub struct Forward {
    pub url: ForwardUrl,
    pub secret: Option<String>,
}

/// What a rotation replaces. The webhook secret always changes (to `Some`
/// given value, or a generated one); other keys only when asked.
#[derive(Debug, Clone, Default)]
pub struct Rotation {
    pub webhook_secret: Option<String>,
    pub stream_key: bool,
    pub api_key: bool,
    pub identity_secret: bool,
    pub posthog_api_key: bool,
}

/// Settings an owner may change without re-issuing keys (`None` = keep).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub contact_email: Option<String>,
    pub identity_required: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    /// `Some(None)` turns push delivery off.
    pub forward: Option<Option<Forward>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Registering an id that exists.
    #[error("product '{0}' is already registered")]
    Exists(ProductId),
    /// No product with this id.
    #[error("unknown product '{0}'")]
    NotFound(ProductId),
    /// `contact_email` is missing or does not look like an address.
    #[error("contact_email must be an email address")]
    InvalidEmail,
    /// A caller-chosen webhook secret too short to be a secret.
    #[error("webhook_secret must be at least {MIN_SECRET_LEN} characters")]
    WeakSecret,
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Shortest webhook secret a caller may choose.
pub const MIN_SECRET_LEN: usize = 16;

fn valid_email(email: &str) -> bool {
    let email = email.trim();
    email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

/// What requests look products up in; replaced whole on every change.
#[derive(Default)]
struct Snapshot {
    by_id: HashMap<ProductId, Arc<Product>>,
    by_posthog_key: HashMap<String, Arc<Product>>,
    by_api_key: HashMap<KeyDigest, Arc<Product>>,
}

impl Snapshot {
    fn of(products: Vec<Product>) -> Self {
        let mut snapshot = Self::default();
        for product in products {
            let product = Arc::new(product);
            if let Some(key) = &product.posthog_api_key {
                snapshot
                    .by_posthog_key
                    .insert(key.clone(), Arc::clone(&product));
            }
            if let Some(digest) = product.api_key {
                snapshot.by_api_key.insert(digest, Arc::clone(&product));
            }
            snapshot.by_id.insert(product.id.clone(), product);
        }
        snapshot
    }
}

/// The product registry: reads from memory, writes through the store. Cheap
/// to clone.
#[derive(Clone)]
pub struct Products {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ProductStore>,
    snapshot: RwLock<Arc<Snapshot>>,
    grace: Duration,
}

impl Products {
    /// Loads every product from `store`. `grace` is how long a rotated-out
    /// webhook secret keeps working.
    pub async fn open(store: Arc<dyn ProductStore>, grace: Duration) -> Result<Self, Error> {
        let products = Self {
            inner: Arc::new(Inner {
                store,
                snapshot: RwLock::new(Arc::new(Snapshot::default())),
                grace,
            }),
        };
        products.refresh().await?;
        Ok(products)
    }

    /// Re-reads every product (they are few; one query beats cache invalidation).
    pub async fn refresh(&self) -> Result<(), Error> {
        let all = self.inner.store.all().await?;
        *self.inner.snapshot.write() = Arc::new(Snapshot::of(all));
        Ok(())
    }

    /// Refreshes every `every` until `shutdown`, so changes made by another
    /// process (the CLI) reach this one.
    pub async fn run_refresh(self, every: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(every.max(Duration::from_millis(100)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {
                    if let Err(error) = self.refresh().await {
                        tracing::warn!(%error, "could not re-read products; keeping the ones loaded");
                    }
                }
            }
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.snapshot.read())
    }

    pub fn get(&self, id: &ProductId) -> Option<Arc<Product>> {
        self.snapshot().by_id.get(id).cloned()
    }

    /// By an id as written in a URL; `None` for an invalid or unknown id.
    pub fn find(&self, raw_id: &str) -> Option<Arc<Product>> {
        self.get(&ProductId::parse(raw_id).ok()?)
    }

    /// The product whose posthog-js project token this is.
    pub fn by_posthog_key(&self, token: &str) -> Option<Arc<Product>> {
        self.snapshot().by_posthog_key.get(token).cloned()
    }

    /// The product whose API key this is. The lookup is by digest, so nothing
    /// about the key leaks through timing.
    pub fn by_api_key(&self, key: &str) -> Option<Arc<Product>> {
        self.snapshot().by_api_key.get(&KeyDigest::of(key)).cloned()
    }

    /// The only product, when there is exactly one (a socket may then omit
    /// its product id).
    pub fn sole(&self) -> Option<Arc<Product>> {
        let snapshot = self.snapshot();
        (snapshot.by_id.len() == 1)
            .then(|| snapshot.by_id.values().next().cloned())
            .flatten()
    }

    /// Every product as loaded, in no particular order.
    pub fn all(&self) -> Vec<Arc<Product>> {
        self.snapshot().by_id.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.snapshot().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One product, fresh from the store (another process may have changed it).
    pub async fn fetch(&self, id: &ProductId) -> Result<Option<Product>, Error> {
        Ok(self.inner.store.get(id).await?)
    }

    /// Every product, fresh from the store, in id order.
    pub async fn list(&self) -> Result<Vec<Product>, Error> {
        Ok(self.inner.store.all().await?)
    }

    /// Registers a new product with every key issued. `Exists` if the id is taken.
    pub async fn register(&self, registration: Registration) -> Result<Credentials, Error> {
        if !valid_email(&registration.contact_email) {
            return Err(Error::InvalidEmail);
        }
        let secret = chosen_secret(registration.webhook_secret)?;
        let now = Utc::now();
        let mut product = Product::new(registration.id.clone(), secret.clone(), now);
        product.contact_email = Some(registration.contact_email.trim().to_owned());
        // Onboarded products verify identities from the start (design §9).
        product.identity_required = true;
        if let Some(forward) = registration.forward {
            set_forward(&mut product, Some(forward));
        }
        let mut credentials = Credentials {
            webhook_secret: Some(secret),
            ..Credentials::default()
        };
        issue(
            &mut product,
            &mut credentials,
            &Rotation {
                webhook_secret: None,
                stream_key: true,
                api_key: true,
                identity_secret: true,
                posthog_api_key: true,
            },
        );
        match self.inner.store.insert(&product).await {
            Ok(()) => {}
            Err(StoreError::Conflict("id")) => return Err(Error::Exists(registration.id)),
            Err(other) => return Err(other.into()),
        }
        self.refresh().await?;
        tracing::info!(product = %product.id, "product registered");
        Ok(credentials)
    }

    /// A new webhook secret (the old one works for the grace period), and
    /// the other keys `rotation` asks for.
    pub async fn rotate(&self, id: &ProductId, rotation: Rotation) -> Result<Credentials, Error> {
        let mut product = self
            .inner
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        let secret = chosen_secret(rotation.webhook_secret.clone())?;
        let now = Utc::now();
        let old = std::mem::replace(&mut product.webhook_secret, secret.clone().into());
        product.previous_webhook_secret = Some(PreviousSecret {
            secret: old,
            expires_at: now
                + chrono::Duration::from_std(self.inner.grace).unwrap_or(chrono::Duration::MAX),
        });
        let mut credentials = Credentials {
            webhook_secret: Some(secret),
            ..Credentials::default()
        };
        issue(&mut product, &mut credentials, &rotation);
        product.updated_at = now;
        if !self.inner.store.update(&product).await? {
            return Err(Error::NotFound(id.clone()));
        }
        self.refresh().await?;
        tracing::info!(product = %id, "product keys rotated");
        Ok(credentials)
    }

    /// Changes settings that are not keys.
    pub async fn update(&self, id: &ProductId, changes: Changes) -> Result<Product, Error> {
        let mut product = self
            .inner
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        if let Some(email) = changes.contact_email {
            if !valid_email(&email) {
                return Err(Error::InvalidEmail);
            }
            product.contact_email = Some(email.trim().to_owned());
        }
        if let Some(required) = changes.identity_required {
            product.identity_required = required;
        }
        if let Some(origins) = changes.allowed_origins {
            product.allowed_origins = normalise_origins(&origins);
        }
        if let Some(forward) = changes.forward {
            set_forward(&mut product, forward);
        }
        product.updated_at = Utc::now();
        if !self.inner.store.update(&product).await? {
            return Err(Error::NotFound(id.clone()));
        }
        self.refresh().await?;
        Ok(product)
    }

    /// Removes a product; `NotFound` if there was none.
    pub async fn remove(&self, id: &ProductId) -> Result<(), Error> {
        if !self.inner.store.delete(id).await? {
            return Err(Error::NotFound(id.clone()));
        }
        self.refresh().await?;
        tracing::info!(product = %id, "product removed");
        Ok(())
    }

    /// Upserts the config file's `[[products]]`: the file wins for the fields
    /// it sets, the database keeps the rest.
    pub async fn seed(&self, entries: &[ProductSettings]) -> Result<(), Error> {
        let now = Utc::now();
        for entry in entries {
            // Ids were validated with the settings.
            let Ok(id) = ProductId::parse(&entry.id) else {
                continue;
            };
            let existing = self.inner.store.get(&id).await?;
            let is_new = existing.is_none();
            let mut product = existing
                .unwrap_or_else(|| Product::new(id.clone(), entry.webhook_secret.clone(), now));
            apply_settings(&mut product, entry);
            product.updated_at = now;
            if is_new {
                self.inner.store.insert(&product).await?;
            } else {
                self.inner.store.update(&product).await?;
            }
        }
        self.refresh().await
    }
}

fn set_forward(product: &mut Product, forward: Option<Forward>) {
    match forward {
        Some(forward) => {
            product.forward_url = Some(forward.url);
            product.forward_secret = forward
                .secret
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(Into::into);
        }
        None => {
            product.forward_url = None;
            product.forward_secret = None;
        }
    }
}

/// The caller's secret if good enough, or a fresh one.
fn chosen_secret(given: Option<String>) -> Result<String, Error> {
    match given.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(secret) if secret.chars().count() < MIN_SECRET_LEN => Err(Error::WeakSecret),
        Some(secret) => Ok(secret),
        None => Ok(keys::generate("")),
    }
}

/// Issues the keys `rotation` asks for, into the product (digests) and the
/// credentials (clear, shown once).
fn issue(product: &mut Product, credentials: &mut Credentials, rotation: &Rotation) {
    if rotation.stream_key {
        let key = keys::generate(keys::STREAM_KEY_PREFIX);
        let key_id = keys::generate_id(keys::STREAM_KEY_ID_PREFIX);
        product.stream_key = Some(KeyDigest::of(&key));
        product.stream_key_id = Some(key_id.clone());
        credentials.stream_key = Some(key);
        credentials.stream_key_id = Some(key_id);
    }
    if rotation.api_key {
        let key = keys::generate(keys::API_KEY_PREFIX);
        product.api_key = Some(KeyDigest::of(&key));
        credentials.api_key = Some(key);
    }
    if rotation.identity_secret {
        let secret = keys::generate(keys::IDENTITY_SECRET_PREFIX);
        product.identity_secret = Some(secret.clone().into());
        credentials.identity_secret = Some(secret);
    }
    if rotation.posthog_api_key {
        let key = keys::generate(keys::POSTHOG_KEY_PREFIX);
        product.posthog_api_key = Some(key.clone());
        credentials.posthog_api_key = Some(key);
    }
}

/// The fields a `[[products]]` entry sets, over what the product had.
fn apply_settings(product: &mut Product, entry: &ProductSettings) {
    if product.webhook_secret.expose_secret() != entry.webhook_secret {
        product.webhook_secret = entry.webhook_secret.clone().into();
        // The file is the source of truth: an old secret is not kept.
        product.previous_webhook_secret = None;
    }
    if !entry.posthog_api_key.is_empty() {
        product.posthog_api_key = Some(entry.posthog_api_key.clone());
    }
    if let Some(email) = &entry.contact_email {
        product.contact_email = Some(email.clone());
    }
    if let Some(key) = &entry.api_key {
        product.api_key = Some(KeyDigest::of(key.expose_secret()));
    }
    if let Some(key) = &entry.stream_key {
        product.stream_key = Some(KeyDigest::of(key.expose_secret()));
        product
            .stream_key_id
            .get_or_insert_with(|| keys::generate_id(keys::STREAM_KEY_ID_PREFIX));
    }
    if let Some(secret) = &entry.identity_secret {
        product.identity_secret = Some(secret.clone());
    }
    // On whenever the file gives a secret and does not say otherwise.
    match entry.identity_required {
        Some(required) => product.identity_required = required,
        None if entry.identity_secret.is_some() => product.identity_required = true,
        None => {}
    }
    if let Some(origins) = &entry.allowed_origins {
        product.allowed_origins = normalise_origins(origins);
    }
}

/// Origins as browsers send them: no trailing slash, no surrounding space.
fn normalise_origins(origins: &[String]) -> Vec<String> {
    origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_check_accepts_addresses_and_refuses_the_rest() {
        assert!(valid_email("ops@acme.com"));
        assert!(!valid_email(""));
        assert!(!valid_email("ops"));
        assert!(!valid_email("ops@localhost"));
        assert!(!valid_email("o ps@acme.com"));
    }

    #[test]
    fn previous_secret_works_only_until_it_expires() {
        let now = Utc::now();
        let mut product = Product::new(ProductId::parse("acme").unwrap(), "new-secret".into(), now);
        product.previous_webhook_secret = Some(PreviousSecret {
            secret: "old-secret".into(),
            expires_at: now + chrono::Duration::seconds(5),
        });
        let secrets: Vec<&str> = product.webhook_secrets(now).collect();
        assert_eq!(secrets, ["new-secret", "old-secret"]);
        let later = now + chrono::Duration::seconds(6);
        assert_eq!(
            product.webhook_secrets(later).collect::<Vec<_>>(),
            ["new-secret"]
        );
    }

    #[test]
    fn origins_empty_means_any_and_a_list_is_enforced() {
        let mut product = Product::new(ProductId::parse("acme").unwrap(), "s".into(), Utc::now());
        assert!(product.origin_allowed(Some("https://evil.example")));
        product.allowed_origins = vec!["https://app.acme.com".into()];
        assert!(product.origin_allowed(Some("https://app.acme.com")));
        assert!(!product.origin_allowed(Some("https://evil.example")));
        assert!(
            product.origin_allowed(None),
            "no Origin: not a browser on another site"
        );
    }
}

//! Push delivery: every frame of a product's stream POSTed to its
//! `forward_url`, signed as autoplay-sdk's `WebhookReceiver` verifies
//! (`X-Connector-Signature: sha256=<hex HMAC-SHA256(secret, body)>`).
//!
//! One worker per forwarding product, subscribed to the hub like any SSE
//! client, so its queue is bounded the same way and a stuck receiver never
//! slows ingest. Deliveries are in order; 5xx, 408, 429, timeouts and
//! connection errors are retried with exponential backoff and jitter, other
//! 4xx are not. The SSRF guard runs when the URL is set (`check_forward_url`)
//! and again on every connection: the resolver drops private addresses and
//! redirects are not followed, so DNS rebinding cannot reach the inside.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use rand::Rng;
use secrecy::ExposeSecret;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::hub::{Hub, Item};
use crate::config::StreamSettings;
use crate::domain::{ForwardUrl, ProductId, UrlError, is_public_ip};
use crate::metrics::Metrics;
use crate::products::Products;

pub const SIGNATURE_HEADER: &str = "x-connector-signature";

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Refuses a `forward_url` whose host is, or resolves to, a non-public
/// address, unless `allow_private`.
pub async fn check_forward_url(url: &ForwardUrl, allow_private: bool) -> Result<(), UrlError> {
    if allow_private {
        return Ok(());
    }
    if let Some(ip) = url.ip() {
        return if is_public_ip(ip) {
            Ok(())
        } else {
            Err(UrlError::Private(ip))
        };
    }
    let host = url.url().host_str().unwrap_or_default().to_owned();
    let port = url.url().port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| UrlError::Unresolved(host.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(UrlError::Unresolved(host));
    }
    match addrs.iter().find(|a| !is_public_ip(a.ip())) {
        Some(private) => Err(UrlError::Private(private.ip())),
        None => Ok(()),
    }
}

/// Resolves names as the system does, keeping only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public_ip(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Where one product's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    pub url: ForwardUrl,
    pub secret: Option<String>,
}

/// Keeps one worker running per product that has a `forward_url`, in step
/// with the registry.
#[derive(Clone)]
pub struct Forwarders {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    products: Products,
    client: reqwest::Client,
    settings: StreamSettings,
    metrics: Metrics,
    running: Mutex<HashMap<ProductId, (ForwardTarget, CancellationToken)>>,
}

impl Forwarders {
    pub fn new(
        hub: Hub,
        products: Products,
        settings: StreamSettings,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let mut client = reqwest::Client::builder()
            .timeout(settings.forward_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("copilot-server/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_forward {
            client = client.dns_resolver(PublicOnly);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                hub,
                products,
                client: client.build()?,
                settings,
                metrics,
                running: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Starts, restarts and stops workers to match the products' settings.
    pub fn sync(&self, shutdown: &CancellationToken) {
        let wanted: HashMap<ProductId, ForwardTarget> = self
            .inner
            .products
            .all()
            .into_iter()
            .filter_map(|p| {
                let url = p.forward_url.clone()?;
                let secret = p
                    .forward_secret
                    .as_ref()
                    .map(|s| s.expose_secret().to_owned());
                Some((p.id.clone(), ForwardTarget { url, secret }))
            })
            .collect();
        let mut running = self.inner.running.lock();
        running.retain(|product, (target, cancel)| {
            let keep = wanted.get(product) == Some(target);
            if !keep {
                cancel.cancel();
            }
            keep
        });
        for (product, target) in wanted {
            if running.contains_key(&product) {
                continue;
            }
            let cancel = shutdown.child_token();
            let subscription = self.inner.hub.subscribe(&product, None);
            tracing::info!(%product, url = %target.url, "stream push delivery on");
            let inner = Arc::clone(&self.inner);
            let worker_target = target.clone();
            let worker_cancel = cancel.clone();
            let worker_product = product.clone();
            tokio::spawn(async move {
                inner
                    .work(worker_product, worker_target, subscription, worker_cancel)
                    .await;
            });
            running.insert(product, (target, cancel));
        }
    }

    /// Syncs every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(every.max(Duration::from_millis(100)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => self.sync(&shutdown),
            }
        }
    }
}

enum Outcome {
    Delivered,
    /// A 4xx other than 408/429: the receiver refuses this body for good.
    Rejected(reqwest::StatusCode),
    /// Worth another try, after at least this long if the receiver said so.
    Retry(String, Option<Duration>),
}

impl Inner {
    async fn work(
        &self,
        product: ProductId,
        target: ForwardTarget,
        mut subscription: super::hub::Subscription,
        cancel: CancellationToken,
    ) {
        loop {
            let item = tokio::select! {
                () = cancel.cancelled() => return,
                item = subscription.next() => item,
            };
            match item {
                None => return,
                Some(Item::Gap { missed, .. }) => {
                    self.metrics.forwarded(&product, "dropped", missed);
                }
                Some(Item::Frame(frame)) => {
                    self.deliver(&product, &target, frame.data.as_bytes(), &cancel)
                        .await;
                }
            }
        }
    }

    async fn deliver(
        &self,
        product: &ProductId,
        target: &ForwardTarget,
        body: &[u8],
        cancel: &CancellationToken,
    ) {
        let mut delay = self.settings.forward_first_retry;
        for attempt in 1..=self.settings.forward_max_attempts.max(1) {
            let outcome = self.attempt(target, body).await;
            let (reason, wait) = match outcome {
                Outcome::Delivered => {
                    self.metrics.forwarded(product, "delivered", 1);
                    return;
                }
                Outcome::Rejected(status) => {
                    self.metrics.forwarded(product, "rejected", 1);
                    tracing::warn!(%product, %status, "stream push refused by the receiver; not retried");
                    return;
                }
                Outcome::Retry(reason, wait) => (reason, wait),
            };
            if attempt == self.settings.forward_max_attempts.max(1) {
                self.metrics.forwarded(product, "failed", 1);
                tracing::warn!(%product, %reason, attempts = attempt, "stream push failed; payload dropped");
                return;
            }
            self.metrics.forwarded(product, "retried", 1);
            tracing::debug!(%product, %reason, attempt, "stream push will be retried");
            // Full jitter in the upper half: spread retries, keep the backoff.
            let jittered = delay.mul_f64(rand::rng().random_range(0.5..=1.0));
            let pause = wait
                .map_or(jittered, |w| w.max(jittered))
                .min(self.settings.forward_max_retry);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            delay = (delay * 2).min(self.settings.forward_max_retry);
        }
    }

    async fn attempt(&self, target: &ForwardTarget, body: &[u8]) -> Outcome {
        // IP literals never reach the resolver: check them here.
        if !self.settings.allow_private_forward
            && let Some(ip) = target.url.ip()
            && !is_public_ip(ip)
        {
            return Outcome::Rejected(reqwest::StatusCode::FORBIDDEN);
        }
        let mut request = self
            .client
            .post(target.url.url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(secret) = &target.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, body));
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    Outcome::Delivered
                } else if status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                {
                    let wait = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    Outcome::Retry(format!("status {status}"), wait)
                } else {
                    Outcome::Rejected(status)
                }
            }
            Err(error) => Outcome::Retry(error.to_string(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256_with_a_prefix() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn private_forward_urls_are_refused_unless_allowed() {
        let local = ForwardUrl::parse("http://127.0.0.1:9000/hook").unwrap();
        assert!(matches!(
            check_forward_url(&local, false).await,
            Err(UrlError::Private(_))
        ));
        assert!(check_forward_url(&local, true).await.is_ok());
        let named = ForwardUrl::parse("http://localhost:9000/hook").unwrap();
        assert!(check_forward_url(&named, false).await.is_err());
        let public = ForwardUrl::parse("https://93.184.216.34/hook").unwrap();
        assert!(check_forward_url(&public, false).await.is_ok());
    }
}

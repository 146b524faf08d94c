//! Abuse limits (governor's GCRA, no counters of our own): chat messages per
//! socket and per user per minute, and LLM answers per user per hour. Keyed
//! limiters are pruned periodically, so what a client can make the server
//! remember stays bounded by the traffic of the last hour.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::domain::{ProductId, UserId, Visitor};

/// Whose messages a limit counts: a known user across all their channels, or
/// an anonymous conversation by its sender id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    User(ProductId, UserId),
    Anonymous(Option<ProductId>, String),
}

impl Who {
    pub fn of(visitor: &Visitor, sender: &str) -> Self {
        match visitor.identity() {
            Some((product, user)) => Who::User(product.clone(), user.clone()),
            None => Who::Anonymous(visitor.product.clone(), sender.to_owned()),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// How often keyed limiters forget keys that are back to a full allowance.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Limits {
    inner: Arc<Inner>,
}

/// Counts across instances (Redis); checked after the local limiter allows.
#[async_trait::async_trait]
pub trait SharedCounts: Send + Sync {
    /// One more for `who` in the current `window`: true while within `limit`.
    async fn allow(
        &self,
        kind: &str,
        who: &str,
        limit: u32,
        window: Duration,
    ) -> Result<bool, String>;
}

struct Inner {
    per_minute: Quota,
    messages_per_minute: u32,
    llm_per_hour: u32,
    shared: Option<Arc<dyn SharedCounts>>,
    messages: DefaultKeyedRateLimiter<Who>,
    llm: Option<DefaultKeyedRateLimiter<Who>>,
}

impl Limits {
    /// `llm_per_hour` 0 = no LLM limit.
    pub fn new(messages_per_minute: NonZeroU32, llm_per_hour: u32) -> Self {
        let per_minute = Quota::per_minute(messages_per_minute);
        Self {
            inner: Arc::new(Inner {
                per_minute,
                messages_per_minute: messages_per_minute.get(),
                llm_per_hour,
                shared: None,
                messages: RateLimiter::keyed(per_minute),
                llm: NonZeroU32::new(llm_per_hour).map(|n| RateLimiter::keyed(Quota::per_hour(n))),
            }),
        }
    }

    /// As `new`, with every allowance also counted in `shared`, so that
    /// several instances grant one allowance between them.
    pub fn shared(
        messages_per_minute: NonZeroU32,
        llm_per_hour: u32,
        shared: Arc<dyn SharedCounts>,
    ) -> Self {
        let mut limits = Self::new(messages_per_minute, llm_per_hour);
        if let Some(inner) = Arc::get_mut(&mut limits.inner) {
            inner.shared = Some(shared);
        }
        limits
    }

    /// The shared count's verdict; when it cannot be asked (Redis down), the
    /// local limiter's, which already said yes: chat keeps working.
    async fn shared_allows(&self, kind: &str, who: &Who, limit: u32, window: Duration) -> bool {
        let Some(shared) = &self.inner.shared else {
            return true;
        };
        let who = match who {
            Who::User(product, user) => format!("u\u{1f}{product}\u{1f}{user}"),
            Who::Anonymous(product, sender) => format!(
                "a\u{1f}{}\u{1f}{sender}",
                product.as_ref().map_or("", ProductId::as_str)
            ),
        };
        match shared.allow(kind, &who, limit, window).await {
            Ok(allowed) => allowed,
            Err(error) => {
                tracing::debug!(%error, "shared rate limit unavailable; the local one applies");
                true
            }
        }
    }

    /// A limiter for one socket, dropped with it.
    pub fn for_socket(&self) -> Arc<DefaultDirectRateLimiter> {
        Arc::new(RateLimiter::direct(self.inner.per_minute))
    }

    /// One more message from `who`, if within the per-minute limit.
    pub async fn allow_message(&self, who: &Who) -> bool {
        self.inner.messages.check_key(who).is_ok()
            && self
                .shared_allows("msg", who, self.inner.messages_per_minute, MINUTE)
                .await
    }

    /// One more LLM answer for `who`, if within the hourly limit.
    /// IMPORTANT: anonymous visitors share one allowance per product: a new
    /// sender id costs nothing to make, so per-sender counting would not bound
    /// the LLM bill.
    pub async fn allow_llm(&self, who: &Who) -> bool {
        let Some(limiter) = &self.inner.llm else {
            return true;
        };
        let counted = match who {
            Who::Anonymous(product, _) => Who::Anonymous(product.clone(), String::new()),
            Who::User(..) => who.clone(),
        };
        limiter.check_key(&counted).is_ok()
            && self
                .shared_allows("llm", &counted, self.inner.llm_per_hour, HOUR)
                .await
    }

    /// Forgets keys whose allowance is full again.
    pub fn prune(&self) {
        self.inner.messages.retain_recent();
        self.inner.messages.shrink_to_fit();
        if let Some(llm) = &self.inner.llm {
            llm.retain_recent();
            llm.shrink_to_fit();
        }
    }

    /// Keys held now (both limiters), for tests and metrics.
    pub fn tracked(&self) -> usize {
        self.inner.messages.len() + self.inner.llm.as_ref().map_or(0, |l| l.len())
    }

    /// Prunes every minute until `shutdown`.
    pub async fn run_pruning(self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(PRUNE_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => self.prune(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(user: &str) -> Who {
        Who::User(
            ProductId::parse("acme").unwrap(),
            UserId::parse(user).unwrap(),
        )
    }

    #[tokio::test]
    async fn messages_are_limited_per_user_and_users_apart() {
        let limits = Limits::new(NonZeroU32::MIN.saturating_add(2), 0);
        let a = who("a");
        for _ in 0..3 {
            assert!(
                limits.allow_message(&a).await,
                "the burst is the per-minute count"
            );
        }
        assert!(!limits.allow_message(&a).await);
        assert!(
            limits.allow_message(&who("b")).await,
            "another user has their own allowance"
        );
        for _ in 0..100 {
            assert!(limits.allow_llm(&a).await, "0 = no LLM limit");
        }
    }

    #[tokio::test]
    async fn llm_calls_are_limited_per_hour() {
        let limits = Limits::new(NonZeroU32::MIN, 2);
        let a = who("a");
        assert!(limits.allow_llm(&a).await && limits.allow_llm(&a).await);
        assert!(!limits.allow_llm(&a).await);
    }

    #[tokio::test]
    async fn anonymous_visitors_share_one_llm_allowance_per_product() {
        let limits = Limits::new(NonZeroU32::MIN, 1);
        let acme = ProductId::parse("acme").ok();
        let first = Who::Anonymous(acme.clone(), "sender-1".to_owned());
        let second = Who::Anonymous(acme, "sender-2".to_owned());
        assert!(limits.allow_llm(&first).await);
        assert!(
            !limits.allow_llm(&second).await,
            "a new sender id is no new allowance"
        );
        let elsewhere = Who::Anonymous(ProductId::parse("beta").ok(), "sender-1".to_owned());
        assert!(
            limits.allow_llm(&elsewhere).await,
            "another product has its own"
        );
    }

    #[test]
    fn a_socket_limiter_is_its_own() {
        let limits = Limits::new(NonZeroU32::MIN, 0);
        let one = limits.for_socket();
        assert!(one.check().is_ok());
        assert!(one.check().is_err());
        assert!(limits.for_socket().check().is_ok());
    }
}

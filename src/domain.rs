//! Domain types shared by every layer: identifiers that are validated once at the
//! edge, and the `Action` a user took. No wire formats and no framework types here.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// Longer than the limit.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// Holds a character we do not accept.
    #[error("contains a character that is not allowed")]
    BadCharacter,
}

const MAX_ID_LEN: usize = 256;

fn check_id(raw: &str, max: usize, ok: impl Fn(char) -> bool) -> Result<String, IdError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdError::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(IdError::TooLong(max));
    }
    if !trimmed.chars().all(ok) {
        return Err(IdError::BadCharacter);
    }
    Ok(trimmed.to_owned())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        // Shared, not owned: ids are cloned into every key an action touches
        // (session, user index, proactive state, journal rows), and a clone
        // is then a count, not an allocation and a copy.
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check_id(raw, $max, $ok).map(|id| Self(id.into()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // Parsed like any other input: a stored id is checked again on load.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A product (a PostHog project or app) as named in the settings and URLs:
    /// 1–64 of `a-z`, `0-9`, `-` and `_` (the hosted connector's rule), so an
    /// id is safe in a URL, a room name and a file name as it is.
    ProductId,
    64,
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')
);
id_type!(
    /// A browsing session (PostHog `$session_id`, or one derived from the user).
    SessionId,
    MAX_ID_LEN,
    |c: char| !c.is_control()
);
id_type!(
    /// A user as the app identifies them (PostHog `distinct_id`, widget `userId`).
    UserId,
    MAX_ID_LEN,
    |c: char| !c.is_control()
);

impl SessionId {
    /// The session an event without `$session_id` is kept under: one per user, so
    /// nothing valid is dropped.
    pub fn derived_from(user: &UserId) -> Self {
        Self(format!("user:{}", user.as_str()).into())
    }
}

/// What kind of thing the user did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum ActionKind {
    Pageview,
    Click,
    Submit,
    /// A DOM change (typing in a field, picking an option).
    Type,
    Rageclick,
    /// A custom event, named as the app named it.
    Custom(String),
}

impl ActionKind {
    pub fn as_str(&self) -> &str {
        match self {
            ActionKind::Pageview => "pageview",
            ActionKind::Click => "click",
            ActionKind::Submit => "submit",
            ActionKind::Type => "type",
            ActionKind::Rageclick => "rageclick",
            ActionKind::Custom(name) => name,
        }
    }
}

impl From<String> for ActionKind {
    fn from(name: String) -> Self {
        match name.as_str() {
            "pageview" => ActionKind::Pageview,
            "click" => ActionKind::Click,
            "submit" => ActionKind::Submit,
            "type" => ActionKind::Type,
            "rageclick" => ActionKind::Rageclick,
            _ => ActionKind::Custom(name),
        }
    }
}

impl From<ActionKind> for String {
    fn from(kind: ActionKind) -> Self {
        kind.as_str().to_owned()
    }
}

/// One thing a user did, in words a person (or an LLM) can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// Short imperative title, e.g. `Click 'Save changes'`.
    pub title: String,
    /// Past-tense phrase without a subject, e.g. `clicked 'Save changes' button on
    /// /projects/:id`. Replies say "You just {phrase}".
    pub phrase: String,
    /// The element's human label, when the action has one.
    pub label: Option<String>,
    /// Canonical page path (`/projects/:id`), the part people recognise.
    pub page: String,
    /// Canonical URL: no query or fragment, ids replaced by `:id`.
    pub canonical_url: String,
    pub raw_url: String,
    pub timestamp: DateTime<Utc>,
    pub session_id: SessionId,
    pub user_id: UserId,
    pub email: Option<String>,
}

impl Action {
    /// `Clicked 'Save changes' button on /projects/:id`.
    pub fn description(&self) -> String {
        let mut chars = self.phrase.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }

    /// The SDK's context line: `[{index}] {type}: {description} — {canonical_url}`.
    pub fn line(&self, index: u64) -> String {
        format!(
            "[{index}] {}: {} \u{2014} {}",
            self.kind.as_str(),
            self.description(),
            self.canonical_url
        )
    }
}

/// Who is chatting, as far as we could tell: the product (when the chat named
/// one we know) and the user, only when their identity was verified or the
/// product trusts claimed ids. Without a user the visitor is anonymous: no
/// activity, no name, no proactive offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Visitor {
    pub product: Option<ProductId>,
    pub user: Option<UserId>,
}

impl Visitor {
    pub fn anonymous(product: Option<ProductId>) -> Self {
        Self {
            product,
            user: None,
        }
    }

    pub fn known(product: ProductId, user: UserId) -> Self {
        Self {
            product: Some(product),
            user: Some(user),
        }
    }

    /// The (product, user) whose activity this visitor may see.
    pub fn identity(&self) -> Option<(&ProductId, &UserId)> {
        Some((self.product.as_ref()?, self.user.as_ref()?))
    }
}

/// Why a `forward_url` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a URL")]
    NotAUrl,
    #[error("must be http or https")]
    Scheme,
    #[error("must not hold a user name or password")]
    Credentials,
    #[error("has no host")]
    NoHost,
    #[error("points at a loopback, private or link-local address ({0})")]
    Private(std::net::IpAddr),
    #[error("host {0} does not resolve")]
    Unresolved(String),
}

/// Where a product's stream payloads are pushed: an absolute http(s) URL with
/// a host and no credentials. Whether its host is public is checked when it is
/// set and again at every connection (see `stream::forward`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardUrl(url::Url);

impl ForwardUrl {
    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let url = url::Url::parse(raw.trim()).map_err(|_| UrlError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlError::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The host when it is an IP literal.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for ForwardUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for addresses on the public internet: not loopback, private (RFC 1918,
/// unique-local), link-local (cloud metadata lives there), CGNAT, unspecified,
/// broadcast, multicast or documentation ranges. The SSRF check for `forward_url`.
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Which sessions this instance makes proactive offers and summaries for.
/// With one instance, every session; with several on Redis, the ones the
/// shared log gave it, so none is doubled.
pub trait SessionOwners: Send + Sync {
    fn owns(&self, product: &ProductId, session: &SessionId) -> bool;
}

#[cfg(test)]
mod forward_url_tests {
    use super::*;

    #[test]
    fn forward_urls_are_http_with_a_host_and_no_credentials() {
        assert!(ForwardUrl::parse("https://hooks.example.com/copilot").is_ok());
        assert_eq!(ForwardUrl::parse("ftp://x.com/"), Err(UrlError::Scheme));
        assert_eq!(ForwardUrl::parse("nonsense"), Err(UrlError::NotAUrl));
        assert_eq!(
            ForwardUrl::parse("https://u:p@x.com/"),
            Err(UrlError::Credentials)
        );
        assert_eq!(
            ForwardUrl::parse("http://127.0.0.1:9/x").unwrap().ip(),
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
    }
}

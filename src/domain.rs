//! Domain types shared by every layer: identifiers that are validated once at the
//! edge, and the `Action` a user took. No wire formats and no framework types here.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

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
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check_id(raw, $max, $ok).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
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
        Self(format!("user:{}", user.as_str()))
    }
}

/// What kind of thing the user did.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
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

impl From<ActionKind> for String {
    fn from(kind: ActionKind) -> Self {
        kind.as_str().to_owned()
    }
}

/// One thing a user did, in words a person (or an LLM) can read.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

//! Chat channels' shared wire handling: Rasa's Socket.IO channel, the bot
//! message payloads every channel sends, and reading who a chat claims to be
//! from its metadata. HTTP chat routes live in `web`; this module knows no axum.

pub mod payloads;
pub mod presence;
pub mod socketio;

use serde_json::Value;

use crate::domain::{ProductId, UserId};
use crate::identity::Claim;

/// Which verified users have a socket open on any instance, so an offer for
/// a user with none costs no question to the adapter or the other instances:
/// [`presence::LocalPresence`] with one instance, Redis's with several.
#[async_trait::async_trait]
pub trait Presence: Send + Sync {
    /// A socket of this instance joined the user's room.
    fn joined(&self, product: &ProductId, user: &UserId);
    /// One left it (disconnected, or now speaks for someone else).
    fn left(&self, product: &ProductId, user: &UserId);
    /// False only when no instance holds a socket of the user.
    async fn online(&self, product: &ProductId, user: &UserId) -> bool;
}

/// The identity a chat claims in a metadata object: `userId`, `userHash` and
/// `productId` at the top, or inside `customData` (rasa-webchat can only pass
/// `customData`). Either place may hold each field.
pub fn claim_in(metadata: &Value) -> Claim {
    let custom = metadata.get("customData");
    let field = |name: &str| {
        metadata
            .get(name)
            .filter(|v| !v.is_null())
            .or_else(|| custom.and_then(|c| c.get(name)).filter(|v| !v.is_null()))
    };
    Claim {
        product_id: field("productId")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        user_id: field("userId").and_then(user_id_value),
        user_hash: field("userHash")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    }
}

/// A user id given as a string or a number.
pub fn user_id_value(value: &Value) -> Option<UserId> {
    match value {
        Value::String(s) => UserId::parse(s).ok(),
        Value::Number(n) => UserId::parse(&n.to_string()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_are_read_at_the_top_or_in_custom_data() {
        let top = claim_in(&json!({"userId": "u1", "userHash": "ab", "productId": "acme"}));
        assert_eq!(top.user_id, UserId::parse("u1").ok());
        assert_eq!(top.user_hash.as_deref(), Some("ab"));
        assert_eq!(top.product_id.as_deref(), Some("acme"));
        let nested = claim_in(&json!({"customData": {"userId": 42, "productId": "acme"}}));
        assert_eq!(nested.user_id, UserId::parse("42").ok());
        assert_eq!(nested.product_id.as_deref(), Some("acme"));
        assert_eq!(
            claim_in(&json!({"userId": null, "customData": {"userId": "u2"}})).user_id,
            UserId::parse("u2").ok()
        );
        assert_eq!(claim_in(&json!("text")), Claim::default());
    }
}

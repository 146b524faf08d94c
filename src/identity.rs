//! Verified identity, as Intercom's `user_hash`: the product's backend signs
//! the user id, `userHash = hex(HMAC-SHA256(identity_secret, userId))`, and a
//! chat whose hash is missing or wrong is an anonymous visitor. This module
//! decides who a chat claim is; the channels only gather the claim.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::domain::{UserId, Visitor};
use crate::products::{Product, Products};

/// The hash a product's backend computes for a user id (lower-case hex).
pub fn user_hash(identity_secret: &str, user: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(identity_secret.as_bytes()) else {
        // HMAC takes keys of any length; this arm cannot be reached.
        return String::new();
    };
    mac.update(user.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a presented hash (hex, either case).
pub fn verify(identity_secret: &str, user: &UserId, presented: &str) -> bool {
    let Ok(bytes) = hex::decode(presented.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(identity_secret.as_bytes()) else {
        return false;
    };
    mac.update(user.as_str().as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

/// What a chat says about itself (socket auth, `customData`, REST metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub product_id: Option<String>,
    pub user_id: Option<UserId>,
    pub user_hash: Option<String>,
}

impl Claim {
    /// `self`, with what it leaves out taken from `fallback`.
    pub fn or(self, fallback: &Claim) -> Claim {
        Claim {
            product_id: self.product_id.or_else(|| fallback.product_id.clone()),
            // A hash belongs to the id it came with: it carries over only to
            // the same id.
            user_hash: match &self.user_id {
                Some(id) if fallback.user_id.as_ref() != Some(id) => self.user_hash,
                _ => self.user_hash.or_else(|| fallback.user_hash.clone()),
            },
            user_id: self.user_id.or_else(|| fallback.user_id.clone()),
        }
    }
}

/// How a claim was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The hash matched the product's identity secret.
    Verified,
    /// The product does not require verification; the claimed id is used.
    Trusted,
    /// A user id was claimed, but the hash is missing or wrong.
    Unverified,
    /// No user id was claimed.
    NoUser,
    /// The claim names no product we know (or several exist and it named none).
    NoProduct,
}

/// A judged claim.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub product: Option<Arc<Product>>,
    pub visitor: Visitor,
    pub verdict: Verdict,
}

/// Decides who a claim is. A product is the one named, or the only one there
/// is; a user is known only when verified, or trusted by a product that does
/// not require verification.
pub fn resolve(products: &Products, claim: &Claim) -> Resolved {
    let product = match claim.product_id.as_deref() {
        Some(id) => products.find(id),
        None => products.sole(),
    };
    let Some(product) = product else {
        return Resolved {
            product: None,
            visitor: Visitor::anonymous(None),
            verdict: Verdict::NoProduct,
        };
    };
    let Some(user) = &claim.user_id else {
        return Resolved {
            visitor: Visitor::anonymous(Some(product.id.clone())),
            product: Some(product),
            verdict: Verdict::NoUser,
        };
    };
    let verdict = match (&product.identity_secret, claim.user_hash.as_deref()) {
        (Some(secret), Some(hash)) if verify(secret.expose_secret(), user, hash) => {
            Verdict::Verified
        }
        // A wrong hash is never trusted, required or not.
        (Some(_), Some(_)) => Verdict::Unverified,
        _ if product.identity_required => Verdict::Unverified,
        _ => Verdict::Trusted,
    };
    let visitor = match verdict {
        Verdict::Verified | Verdict::Trusted => Visitor::known(product.id.clone(), user.clone()),
        _ => Visitor::anonymous(Some(product.id.clone())),
    };
    Resolved {
        product: Some(product),
        visitor,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_for_its_secret_and_user() {
        let user = UserId::parse("user_42").unwrap();
        let hash = user_hash("cis_secret", "user_42");
        assert_eq!(hash.len(), 64);
        assert!(verify("cis_secret", &user, &hash));
        assert!(
            verify("cis_secret", &user, &hash.to_uppercase()),
            "hex in either case"
        );
        assert!(!verify("cis_other", &user, &hash));
        let other = UserId::parse("user_43").unwrap();
        assert!(!verify("cis_secret", &other, &hash));
        assert!(!verify("cis_secret", &user, "not hex"));
        assert!(!verify("cis_secret", &user, ""));
    }

    #[test]
    fn a_claim_keeps_its_own_hash_with_its_own_user() {
        let socket = Claim {
            product_id: Some("acme".into()),
            user_id: UserId::parse("a").ok(),
            user_hash: Some("hash-of-a".into()),
        };
        let message = Claim {
            product_id: None,
            user_id: UserId::parse("b").ok(),
            user_hash: None,
        };
        let merged = message.or(&socket);
        assert_eq!(merged.product_id.as_deref(), Some("acme"));
        assert_eq!(merged.user_id, UserId::parse("b").ok());
        assert_eq!(merged.user_hash, None, "a's hash is not b's");
        let empty = Claim::default().or(&socket);
        assert_eq!(empty, socket);
        let same_user = Claim {
            user_id: UserId::parse("a").ok(),
            ..Claim::default()
        };
        assert_eq!(
            same_user.or(&socket).user_hash.as_deref(),
            Some("hash-of-a"),
            "the same id keeps its hash"
        );
    }
}

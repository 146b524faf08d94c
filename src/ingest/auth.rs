//! Webhook authentication: `X-PostHog-Secret` equal to the product's secret, or
//! `sha256=<hex HMAC-SHA256(secret, raw body)>`. Both checks are constant-time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The header PostHog's destination sends.
pub const SECRET_HEADER: &str = "x-posthog-secret";

/// True when `presented` proves knowledge of `secret` for this `body`.
pub fn verify(secret: &str, presented: &str, body: &[u8]) -> bool {
    let presented = presented.trim();
    // Compare digests, not the strings, so neither the content nor the length of
    // the secret leaks through timing.
    let plain_ok: bool = Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(secret.as_bytes()))
        .into();
    if plain_ok {
        return true;
    }
    let Some(hex_mac) = presented.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(mac_bytes) = hex::decode(hex_mac) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` is constant-time.
    mac.verify_slice(&mac_bytes).is_ok()
}

/// `sha256=<hex>` for `body` under `secret`; what a signing sender computes.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be reached.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_secret_and_hmac_are_accepted_and_others_refused() {
        let body = br#"{"event":"x"}"#;
        assert!(verify("s3cret", "s3cret", body));
        assert!(verify("s3cret", &sign("s3cret", body), body));
        assert!(!verify("s3cret", "s3cre", body), "prefix of the secret");
        assert!(!verify("s3cret", "", body), "empty");
        assert!(!verify("s3cret", &sign("other", body), body), "wrong key");
        assert!(
            !verify("s3cret", &sign("s3cret", b"tampered"), body),
            "other body"
        );
        assert!(!verify("s3cret", "sha256=zz", body), "bad hex");
    }
}

//! Keys and secrets: generating them, storing only digests of those that are
//! only compared, and comparing in constant time. No I/O here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefixes make a leaked key recognisable (secret scanners, logs) and say
/// which key it is when a person pastes one in the wrong place.
pub const API_KEY_PREFIX: &str = "cpk_";
pub const STREAM_KEY_PREFIX: &str = "csk_";
pub const IDENTITY_SECRET_PREFIX: &str = "cis_";
pub const POSTHOG_KEY_PREFIX: &str = "phc_";
pub const STREAM_KEY_ID_PREFIX: &str = "key_";

/// 32 random bytes, URL-safe base64 (what Python's `secrets.token_urlsafe(32)`
/// gives, the SDK's default webhook secret), after `prefix`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A short public id for a stream key (`unkey_key_id`), not a secret.
pub fn generate_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// SHA-256 of a key: what the database holds for keys that are only compared.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but there is no reason to print them either.
        f.write_str("KeyDigest(..)")
    }
}

impl KeyDigest {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.trim().as_bytes()).into())
    }

    /// Constant-time: the comparison is of digests, so neither the key's
    /// content nor its length leaks through timing.
    pub fn matches(&self, presented: &str) -> bool {
        Self::of(presented).0.ct_eq(&self.0).into()
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_prefixed_long_and_distinct() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert!(a.starts_with("cpk_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert!(generate_id(STREAM_KEY_ID_PREFIX).starts_with("key_"));
    }

    #[test]
    fn digests_match_only_their_key_and_round_trip_as_hex() {
        let digest = KeyDigest::of("cpk_abc");
        assert!(digest.matches("cpk_abc"));
        assert!(digest.matches(" cpk_abc "), "surrounding space is ignored");
        assert!(!digest.matches("cpk_abd"));
        assert!(!digest.matches(""));
        assert_eq!(KeyDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(KeyDigest::from_hex("zz"), None);
    }
}

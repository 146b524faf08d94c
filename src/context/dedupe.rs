//! Remembers delivered event ids so a retried PostHog delivery counts once.
//!
//! Two generations of 128-bit digests instead of a cache of strings: an entry
//! is 16 bytes in a hash set (about 25 bytes with the table's slack) instead of
//! about 450 bytes as a moka entry with a `String` key (measured in
//! BENCHMARKS.md). The trade is precision of expiry: an id is remembered for
//! at least `ttl / 2` and at most `ttl` (or, under a flood, at least
//! `capacity / 2` newer ids), which is what retry de-duplication needs.

use std::collections::HashSet;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub struct Deduper {
    /// Ids per generation; two generations are kept.
    generation_capacity: usize,
    generation_ttl: Duration,
    state: Mutex<Generations>,
}

struct Generations {
    current: HashSet<u128>,
    previous: HashSet<u128>,
    started: Instant,
}

impl Deduper {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let generation_capacity = usize::try_from(capacity / 2).unwrap_or(usize::MAX).max(1);
        Self {
            generation_capacity,
            generation_ttl: (ttl / 2).max(Duration::from_millis(1)),
            state: Mutex::new(Generations {
                current: HashSet::new(),
                previous: HashSet::new(),
                started: Instant::now(),
            }),
        }
    }

    /// True the first time `key` is seen under `scope`. Atomic: of concurrent
    /// calls with the same key, exactly one gets true.
    pub fn first(&self, scope: &str, key: &str) -> bool {
        let digest = digest(scope, key);
        let mut state = self.state.lock();
        if state.current.len() >= self.generation_capacity
            || state.started.elapsed() >= self.generation_ttl
        {
            // The old generation is dropped whole, so memory stays within two
            // generations however fast ids arrive.
            state.previous = std::mem::take(&mut state.current);
            state.started = Instant::now();
        }
        if state.previous.contains(&digest) {
            return false;
        }
        state.current.insert(digest)
    }

    /// Forgets `key`, so it is first again (its delivery could not be kept).
    pub fn forget(&self, scope: &str, key: &str) {
        let digest = digest(scope, key);
        let mut state = self.state.lock();
        state.current.remove(&digest);
        state.previous.remove(&digest);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        let state = self.state.lock();
        state.current.len() + state.previous.len()
    }
}

/// SHA-256 cut to 128 bits: ids come from clients, so no crafted collisions;
/// the scope and key are length-prefixed so `("a", "bc")` ≠ `("ab", "c")`.
fn digest(scope: &str, key: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((scope.len() as u64).to_le_bytes());
    hasher.update(scope.as_bytes());
    hasher.update(key.as_bytes());
    let bytes = hasher.finalize();
    let mut head = [0u8; 16];
    head.copy_from_slice(&bytes[..16]);
    u128::from_le_bytes(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_first_once_per_scope() {
        let dedupe = Deduper::new(100, Duration::from_secs(60));
        assert!(dedupe.first("a", "uuid-1"));
        assert!(!dedupe.first("a", "uuid-1"));
        assert!(dedupe.first("b", "uuid-1"));
        assert!(dedupe.first("ab", "c"));
        assert!(dedupe.first("a", "bc"));
        dedupe.forget("a", "uuid-1");
        assert!(dedupe.first("a", "uuid-1"), "forgotten, so first again");
    }

    #[test]
    fn memory_is_bounded_by_two_generations_and_recent_ids_survive_a_rotation() {
        let dedupe = Deduper::new(100, Duration::from_secs(3600));
        for i in 0..10_000 {
            assert!(dedupe.first("p", &i.to_string()));
            assert!(dedupe.len() <= 100, "{} ids after {i}", dedupe.len());
        }
        // The newest half-capacity is always remembered.
        for i in 9_950..10_000 {
            assert!(!dedupe.first("p", &i.to_string()), "{i} forgotten");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ids_expire_between_half_the_ttl_and_the_ttl() {
        let dedupe = Deduper::new(1000, Duration::from_secs(60));
        assert!(dedupe.first("p", "old"));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(!dedupe.first("p", "old"), "remembered for ttl/2");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!dedupe.first("p", "old"), "still within the ttl");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(dedupe.first("p", "old"), "forgotten after the ttl");
    }
}

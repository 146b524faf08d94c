//! Which verified users hold a socket on this instance: a count per user,
//! kept as sockets join and leave their user's room. With one instance that
//! is the whole answer, a map lookup: an offer for a user with no socket
//! (the common case while events stream in) no longer walks the adapter's
//! rooms through `fetch_sockets`. Redis's presence builds on it.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::Presence;
use crate::domain::{ProductId, UserId};

#[derive(Default)]
pub struct LocalPresence {
    /// Sockets per user; a user with none has no entry.
    counts: Mutex<HashMap<(ProductId, UserId), usize>>,
}

impl LocalPresence {
    /// Counts a socket in; true when it is the user's first here.
    pub fn join(&self, product: &ProductId, user: &UserId) -> bool {
        let mut counts = self.counts.lock();
        let count = counts.entry((product.clone(), user.clone())).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Counts a socket out; a user's last one removes the entry.
    pub fn leave(&self, product: &ProductId, user: &UserId) {
        let mut counts = self.counts.lock();
        let key = (product.clone(), user.clone());
        if let Some(count) = counts.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&key);
            }
        }
    }

    pub fn holds(&self, product: &ProductId, user: &UserId) -> bool {
        self.counts
            .lock()
            .contains_key(&(product.clone(), user.clone()))
    }

    /// Every user with a socket here.
    pub fn users(&self) -> Vec<(ProductId, UserId)> {
        self.counts.lock().keys().cloned().collect()
    }
}

#[async_trait::async_trait]
impl Presence for LocalPresence {
    fn joined(&self, product: &ProductId, user: &UserId) {
        self.join(product, user);
    }

    fn left(&self, product: &ProductId, user: &UserId) {
        self.leave(product, user);
    }

    async fn online(&self, product: &ProductId, user: &UserId) -> bool {
        self.holds(product, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_online_until_their_last_socket_leaves() {
        let presence = LocalPresence::default();
        let product = ProductId::parse("acme").unwrap();
        let (ann, bob) = (UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap());
        assert!(presence.join(&product, &ann));
        assert!(
            !presence.join(&product, &ann),
            "a second socket is not the first"
        );
        assert!(presence.holds(&product, &ann));
        assert!(!presence.holds(&product, &bob));
        presence.leave(&product, &ann);
        assert!(presence.holds(&product, &ann), "one socket is still open");
        presence.leave(&product, &ann);
        assert!(!presence.holds(&product, &ann));
        presence.leave(&product, &ann);
        assert!(
            presence.users().is_empty(),
            "leaving twice leaves nothing behind"
        );
    }
}

//! The copilot: turns a user's question into a reply grounded in their activity.
//! Callers (HTTP, sockets) hand it typed ids and text; it knows no transport.

use crate::context::ContextStore;
use crate::domain::UserId;

use super::conversation::Conversations;
use super::names::{display_name, first_name};
use super::offline::{OfflineResponder, Topic};

/// A reply and what it was based on.
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    /// The user's display name from their email (`Casey Jones`), if known.
    pub name: Option<String>,
    pub has_activity: bool,
}

#[derive(Clone)]
pub struct Copilot {
    store: ContextStore,
    conversations: Conversations,
    offline: OfflineResponder,
}

impl Copilot {
    pub fn new(store: ContextStore, conversations: Conversations) -> Self {
        Self {
            store,
            conversations,
            offline: OfflineResponder,
        }
    }

    /// Answers `query` for `user`, addressing them by first name on the first
    /// reply of a conversation.
    pub async fn reply(&self, user: &UserId, query: &str) -> Reply {
        let activity = self.store.user_activity(user);
        let name = activity
            .email
            .clone()
            .or_else(|| self.store.user_email(user))
            .as_deref()
            .and_then(display_name);
        let sender = format!("user:{user}");
        let start = self.conversations.begin_turn(&sender, query);
        let greet = name
            .as_deref()
            .filter(|_| start.first_reply)
            .map(first_name);
        let text = self.offline.reply(Topic::guess(query), &activity, greet);
        self.conversations.record_bot(&sender, &text);
        Reply {
            text,
            name,
            has_activity: activity.has_activity(),
        }
    }
}

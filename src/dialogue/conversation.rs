//! Conversation memory per sender: the last few turns and whether the user has
//! been greeted by name yet. Bounded and forgotten after idling.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use parking_lot::Mutex;

use crate::config::ChatSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

#[derive(Default)]
struct Conversation {
    greeted: bool,
    turns: VecDeque<Turn>,
}

/// What a new turn starts from.
#[derive(Debug, Clone)]
pub struct TurnStart {
    /// The user has not been addressed by name in this conversation yet.
    pub first_reply: bool,
    /// Earlier turns, oldest first, not including this one.
    pub history: Vec<Turn>,
}

#[derive(Clone)]
pub struct Conversations {
    cache: Cache<String, Arc<Mutex<Conversation>>>,
    max_turns: usize,
}

impl Conversations {
    pub fn new(settings: &ChatSettings) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(settings.max_conversations)
                .time_to_idle(Duration::from_secs(
                    settings.conversation_idle_seconds.max(1),
                ))
                .build(),
            max_turns: settings.history_turns,
        }
    }

    fn get(&self, sender: &str) -> Arc<Mutex<Conversation>> {
        self.cache.get_with(sender.to_owned(), Default::default)
    }

    /// Records the user's message and returns what came before it.
    pub fn begin_turn(&self, sender: &str, user_text: &str) -> TurnStart {
        let conversation = self.get(sender);
        let mut c = conversation.lock();
        let start = TurnStart {
            first_reply: !c.greeted,
            history: c.turns.iter().cloned().collect(),
        };
        c.greeted = true;
        self.push(&mut c, Role::User, user_text);
        start
    }

    /// Records a bot message (a reply or a proactive offer).
    pub fn record_bot(&self, sender: &str, text: &str) {
        let conversation = self.get(sender);
        let mut c = conversation.lock();
        self.push(&mut c, Role::Assistant, text);
    }

    fn push(&self, c: &mut Conversation, role: Role, text: &str) {
        c.turns.push_back(Turn {
            role,
            text: text.to_owned(),
        });
        while c.turns.len() > self.max_turns {
            c.turns.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reply_once_and_history_bounded() {
        let conversations = Conversations::new(&ChatSettings {
            conversation_idle_seconds: 60,
            history_turns: 3,
            max_conversations: 10,
        });
        let first = conversations.begin_turn("u", "hi");
        assert!(first.first_reply);
        assert!(first.history.is_empty());
        conversations.record_bot("u", "hello");
        let second = conversations.begin_turn("u", "what now");
        assert!(!second.first_reply);
        assert_eq!(second.history.len(), 2);
        conversations.record_bot("u", "this");
        let third = conversations.begin_turn("u", "ok");
        let texts: Vec<&str> = third.history.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["hello", "what now", "this"], "oldest dropped");
        assert!(conversations.begin_turn("other", "hi").first_reply);
    }
}

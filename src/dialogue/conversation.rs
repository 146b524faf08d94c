//! Conversation memory per (visitor, sender): the last few turns and whether
//! the user has been greeted by name yet. Bounded and forgotten after idling.
//! Keyed by who is speaking as well as the sender id, so an anonymous visitor
//! who reuses a user's session id never sees that user's conversation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use parking_lot::Mutex;

use serde::{Deserialize, Serialize};

use super::tracker::{Saved, Tracker};
use crate::config::ChatSettings;
use crate::domain::{ProductId, UserId, Visitor};

/// One conversation: who is speaking, and Rasa's sender id (a session id, a
/// socket id, a REST sender).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    pub visitor: Visitor,
    pub sender: String,
}

impl ConversationKey {
    pub fn new(visitor: &Visitor, sender: &str) -> Self {
        Self {
            visitor: visitor.clone(),
            sender: sender.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

#[derive(Default)]
struct Conversation {
    greeted: bool,
    turns: VecDeque<Turn>,
    tracker: Tracker,
    /// The time of the newest turn or offer, Unix milliseconds: the next one
    /// is stamped later, so a transcript ordered by time keeps the order even
    /// when two messages arrive within one millisecond. Not saved: a restart
    /// takes longer than that.
    last_at_ms: i64,
}

impl Conversation {
    /// `now_ms`, or one past the newest stamp if that is not earlier: strictly
    /// increasing within a conversation, and never ahead of the clock by more
    /// than the turns of one millisecond (a rate-limited user's few).
    fn stamp(&mut self, now_ms: i64) -> i64 {
        self.last_at_ms = now_ms.max(self.last_at_ms.saturating_add(1));
        self.last_at_ms
    }
}

/// What a new turn starts from.
#[derive(Debug, Clone)]
pub struct TurnStart {
    /// The user has not been addressed by name in this conversation yet.
    pub first_reply: bool,
    /// Earlier turns, oldest first, not including this one.
    pub history: Vec<Turn>,
    /// The dialogue state before this message; stored back by `finish_turn`.
    pub tracker: Tracker,
    /// When the turn started, Unix milliseconds; later than any earlier turn
    /// or offer of this conversation.
    pub at_ms: i64,
}

/// Keeps conversations across restarts (the journal). Called after each
/// change, outside any await; must not block.
pub trait ConversationSink: Send + Sync {
    /// `key` and `state` are JSON made by [`Conversations`]; `visitor` says
    /// whose it is (for erasure).
    fn keep(&self, visitor: &Visitor, key: String, state: String);
}

/// The key as stored: reversible, and unique per (visitor, sender).
#[derive(Serialize, Deserialize)]
struct SavedKey {
    product: Option<ProductId>,
    user: Option<UserId>,
    sender: String,
}

#[derive(Serialize, Deserialize)]
struct SavedConversation {
    greeted: bool,
    turns: Vec<Turn>,
    tracker: Saved,
}

#[derive(Clone)]
pub struct Conversations {
    cache: Cache<ConversationKey, Arc<Mutex<Conversation>>>,
    max_turns: usize,
    sink: Option<Arc<dyn ConversationSink>>,
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
            sink: None,
        }
    }

    /// As `new`, keeping every change through `sink`.
    pub fn kept(settings: &ChatSettings, sink: Arc<dyn ConversationSink>) -> Self {
        Self {
            sink: Some(sink),
            ..Self::new(settings)
        }
    }

    /// Puts back a conversation the sink kept; false if it does not parse.
    pub fn restore(&self, key: &str, state: &str) -> bool {
        let (Ok(key), Ok(saved)) = (
            serde_json::from_str::<SavedKey>(key),
            serde_json::from_str::<SavedConversation>(state),
        ) else {
            return false;
        };
        let key = ConversationKey {
            visitor: Visitor {
                product: key.product,
                user: key.user,
            },
            sender: key.sender,
        };
        let mut turns: VecDeque<Turn> = saved.turns.into();
        while turns.len() > self.max_turns {
            turns.pop_front();
        }
        self.cache.insert(
            key,
            Arc::new(Mutex::new(Conversation {
                greeted: saved.greeted,
                turns,
                tracker: Tracker::restore(saved.tracker),
                last_at_ms: 0,
            })),
        );
        true
    }

    fn keep(&self, key: &ConversationKey, c: &Conversation) {
        let Some(sink) = &self.sink else {
            return;
        };
        let saved_key = SavedKey {
            product: key.visitor.product.clone(),
            user: key.visitor.user.clone(),
            sender: key.sender.clone(),
        };
        let saved = SavedConversation {
            greeted: c.greeted,
            turns: c.turns.iter().cloned().collect(),
            tracker: c.tracker.save(),
        };
        if let (Ok(k), Ok(state)) = (
            serde_json::to_string(&saved_key),
            serde_json::to_string(&saved),
        ) {
            sink.keep(&key.visitor, k, state);
        }
    }

    fn get(&self, key: &ConversationKey) -> Arc<Mutex<Conversation>> {
        match self.cache.get(key) {
            Some(conversation) => conversation,
            None => self.cache.get_with(key.clone(), Default::default),
        }
    }

    /// Records the user's message, received at `now_ms`, and returns what came
    /// before it.
    pub fn begin_turn(&self, key: &ConversationKey, user_text: &str, now_ms: i64) -> TurnStart {
        let conversation = self.get(key);
        let mut c = conversation.lock();
        let start = TurnStart {
            at_ms: c.stamp(now_ms),
            first_reply: !c.greeted,
            history: c.turns.iter().cloned().collect(),
            // Taken, not cloned (a turn should not copy 64 events): the turn
            // puts it back in `finish_turn`. A second message of the same
            // conversation while one is in flight starts from a fresh state.
            tracker: std::mem::take(&mut c.tracker),
        };
        c.greeted = true;
        self.push(&mut c, Role::User, user_text);
        start
    }

    /// Stores the dialogue state a turn ended with, and the bot's texts.
    /// (Two turns of one conversation at once: the later one wins.)
    pub fn finish_turn(&self, key: &ConversationKey, tracker: Tracker, texts: &[&str]) {
        let conversation = self.get(key);
        let mut c = conversation.lock();
        c.tracker = tracker;
        for text in texts {
            self.push(&mut c, Role::Assistant, text);
        }
        self.keep(key, &c);
    }

    /// The time to record an offer made at `now_ms` under: later than any
    /// earlier turn or offer of the conversation.
    pub fn stamp(&self, key: &ConversationKey, now_ms: i64) -> i64 {
        self.get(key).lock().stamp(now_ms)
    }

    /// Records a bot action the user saw outside a turn (a proactive offer),
    /// so rules can follow on from it ("yes" right after the offer).
    pub fn record_action(&self, key: &ConversationKey, action: &str, texts: &[&str]) {
        let conversation = self.get(key);
        let mut c = conversation.lock();
        c.tracker.action(action);
        for text in texts {
            c.tracker.bot(text);
            self.push(&mut c, Role::Assistant, text);
        }
        self.keep(key, &c);
    }

    /// Records a bot message (a reply or a proactive offer).
    pub fn record_bot(&self, key: &ConversationKey, text: &str) {
        let conversation = self.get(key);
        let mut c = conversation.lock();
        self.push(&mut c, Role::Assistant, text);
        self.keep(key, &c);
    }

    /// Forgets every conversation of one product's user; returns how many.
    /// Walks all conversations: for a deletion request, not a hot path.
    pub fn erase_user(&self, product: &ProductId, user: &UserId) -> usize {
        let doomed: Vec<ConversationKey> = self
            .cache
            .iter()
            .filter(|(key, _)| key.visitor.identity() == Some((product, user)))
            .map(|(key, _)| (*key).clone())
            .collect();
        for key in &doomed {
            self.cache.invalidate(key);
        }
        doomed.len()
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

    fn conversations(history_turns: usize) -> Conversations {
        Conversations::new(&ChatSettings {
            conversation_idle_seconds: 60,
            history_turns,
            max_conversations: 10,
            max_messages_per_minute: 30,
        })
    }

    #[test]
    fn first_reply_once_and_history_bounded() {
        let conversations = conversations(3);
        let u = ConversationKey::new(&Visitor::anonymous(None), "u");
        let first = conversations.begin_turn(&u, "hi", 0);
        assert!(first.first_reply);
        assert!(first.history.is_empty());
        conversations.record_bot(&u, "hello");
        let second = conversations.begin_turn(&u, "what now", 0);
        assert!(!second.first_reply);
        assert_eq!(second.history.len(), 2);
        conversations.record_bot(&u, "this");
        let third = conversations.begin_turn(&u, "ok", 0);
        let texts: Vec<&str> = third.history.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["hello", "what now", "this"], "oldest dropped");
        let other = ConversationKey::new(&Visitor::anonymous(None), "other");
        assert!(conversations.begin_turn(&other, "hi", 0).first_reply);
    }

    #[test]
    fn turns_and_offers_within_one_millisecond_are_stamped_in_order() {
        let conversations = conversations(3);
        let u = ConversationKey::new(&Visitor::anonymous(None), "u");
        let other = ConversationKey::new(&Visitor::anonymous(None), "other");
        assert_eq!(conversations.begin_turn(&u, "hi", 1_000).at_ms, 1_000);
        assert_eq!(conversations.begin_turn(&u, "again", 1_000).at_ms, 1_001);
        assert_eq!(conversations.stamp(&u, 1_000), 1_002, "an offer after them");
        // Another conversation has its own clock.
        assert_eq!(conversations.begin_turn(&other, "hi", 1_000).at_ms, 1_000);
        // Once the clock has moved past, it is used as it is.
        assert_eq!(conversations.begin_turn(&u, "later", 5_000).at_ms, 5_000);
    }

    #[test]
    fn a_user_and_an_anonymous_visitor_on_one_sender_are_apart_and_erasable() {
        let conversations = conversations(10);
        let product = ProductId::parse("acme").unwrap();
        let user = UserId::parse("u1").unwrap();
        let known = ConversationKey::new(&Visitor::known(product.clone(), user.clone()), "s1");
        let anonymous = ConversationKey::new(&Visitor::anonymous(Some(product.clone())), "s1");
        conversations.begin_turn(&known, "my secret plan", 0);
        assert!(
            conversations
                .begin_turn(&anonymous, "hi", 0)
                .history
                .is_empty()
        );
        assert_eq!(conversations.erase_user(&product, &user), 1);
        assert!(
            conversations
                .begin_turn(&known, "again", 0)
                .history
                .is_empty()
        );
    }
}

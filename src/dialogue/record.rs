//! What a chat turn (or a proactive offer) leaves behind for the console:
//! what was said, which intent and responder answered and why, the sources,
//! the activity block and the prompt the LLM saw. The copilot hands records
//! to a [`TurnSink`] (the database); it never waits for them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::conversation::ConversationKey;
use crate::domain::{ProductId, UserId};

/// Who produced a turn's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Responder {
    /// A domain response a rule picked.
    Rule,
    /// A domain response a story (or a follow-up) picked.
    Response,
    /// The LLM, grounded in the activity (and the docs).
    Llm,
    /// Templates over the activity, without an LLM.
    Offline,
    /// A section of the product's docs, without an LLM.
    Knowledge,
    /// A custom action on the action server.
    CustomAction,
    /// The project's `utter_default`.
    Fallback,
    /// A form asking for a slot.
    Form,
    /// Nothing was said (an action with no messages).
    None,
    /// A proactive offer (not a reply to a message).
    Proactive,
}

impl Responder {
    pub const ALL: [Responder; 10] = [
        Responder::Rule,
        Responder::Response,
        Responder::Llm,
        Responder::Offline,
        Responder::Knowledge,
        Responder::CustomAction,
        Responder::Fallback,
        Responder::Form,
        Responder::None,
        Responder::Proactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Responder::Rule => "rule",
            Responder::Response => "response",
            Responder::Llm => "llm",
            Responder::Offline => "offline",
            Responder::Knowledge => "knowledge",
            Responder::CustomAction => "custom_action",
            Responder::Fallback => "fallback",
            Responder::Form => "form",
            Responder::None => "none",
            Responder::Proactive => "proactive",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Answers written for this turn (LLM, templates, docs) rather than
    /// picked from the domain: later ones in a turn take precedence.
    pub fn is_generated(self) -> bool {
        matches!(
            self,
            Responder::Llm | Responder::Offline | Responder::Knowledge
        )
    }
}

/// A cited help page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub title: String,
    pub url: String,
}

/// The prompt exactly as the LLM was sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// An intent and its confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub confidence: f32,
}

/// A turn's details: shown in a transcript, never filtered on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnDetail {
    pub confidence: Option<f32>,
    pub ranking: Vec<Ranked>,
    /// Why the responder ran: `rule: <name>`, `story`, `form`, `fallback`…
    pub rule: Option<String>,
    /// The actions the policy ran, in order.
    pub actions: Vec<String>,
    pub replies: Vec<String>,
    pub sources: Vec<Source>,
    /// The activity block the answer was grounded in (the LLM's, verbatim).
    pub activity: Option<String>,
    pub prompt: Option<Prompt>,
    /// The LLM failed and templates answered.
    pub llm_failed: bool,
    /// The intent fell back (nlu_fallback).
    pub fallback: bool,
    /// Two intents were too close to call.
    pub ambiguous: bool,
}

/// A thumbs up or down on a bot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feedback {
    Up,
    Down,
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Up => "up",
            Feedback::Down => "down",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Turn,
    Offer,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Turn => "turn",
            RecordKind::Offer => "offer",
        }
    }
}

/// One turn or offer as the console keeps it.
#[derive(Debug, Clone)]
pub struct TurnRecord {
    pub id: String,
    pub conversation_id: String,
    pub product: Option<ProductId>,
    pub user: Option<UserId>,
    pub sender: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub kind: RecordKind,
    pub text: String,
    pub intent: Option<String>,
    pub responder: Responder,
    pub llm_ms: Option<u64>,
    pub detail: TurnDetail,
}

impl TurnRecord {
    /// In the NLU inbox: a message that fell back or was ambiguous.
    pub fn for_inbox(&self) -> bool {
        self.kind == RecordKind::Turn && (self.detail.fallback || self.detail.ambiguous)
    }
}

/// Where records go. Must not block (the database writes in the background).
pub trait TurnSink: Send + Sync {
    fn record(&self, record: TurnRecord);
    /// Only for a turn of `conversation_id` (a socket rates its own answers).
    fn feedback(&self, conversation_id: &str, turn_id: &str, feedback: Feedback);
}

/// A new turn id: random, so ids say nothing about volume or order.
pub fn new_turn_id() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// A conversation's public id: a digest of who and which sender, so the
/// console can link to it without putting user ids in URLs.
pub fn conversation_id(key: &ConversationKey) -> String {
    let mut hasher = Sha256::new();
    for part in [
        key.visitor.product.as_ref().map(|p| p.as_str()),
        key.visitor.user.as_ref().map(|u| u.as_str()),
        Some(key.sender.as_str()),
    ] {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        let part = part.unwrap_or("\u{0}");
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    format!("c_{}", hex::encode(&hasher.finalize()[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Visitor;

    #[test]
    fn conversation_ids_differ_by_visitor_and_sender() {
        let p = ProductId::parse("demo").unwrap();
        let a = ConversationKey::new(
            &Visitor::known(p.clone(), UserId::parse("u1").unwrap()),
            "s",
        );
        let b = ConversationKey::new(&Visitor::anonymous(Some(p)), "s");
        let c = ConversationKey::new(&Visitor::anonymous(None), "s");
        let ids = [
            conversation_id(&a),
            conversation_id(&b),
            conversation_id(&c),
        ];
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_eq!(conversation_id(&a), ids[0]);
        assert!(ids[0].starts_with("c_") && ids[0].len() == 26);
    }

    #[test]
    fn responders_round_trip() {
        for r in Responder::ALL {
            assert_eq!(Responder::parse(r.as_str()), Some(r));
        }
        assert_eq!(Responder::parse("nope"), None);
    }
}

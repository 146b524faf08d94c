//! Dialogue: deciding what to say. The tracker and policy (rules, stories),
//! slots and forms, custom actions on an action server, responses, names,
//! conversation memory, the offline responder and the copilot pipeline; no
//! HTTP or socket types.

pub mod action_server;
pub mod bot;
pub mod conversation;
pub mod copilot;
pub mod forms;
pub mod live;
pub mod names;
pub mod offline;
pub mod policy;
pub mod prompt;
pub mod record;
pub mod responses;
pub mod slots;
pub mod tracker;

pub use bot::{Bot, DialogueOptions};
pub use conversation::{ConversationSink, Conversations, Role, Turn};
pub use copilot::{Copilot, Live, LlmSetup, Reply, TurnResult, UserMessage};
pub use offline::OfflineResponder;
pub use record::{Feedback, Responder, TurnRecord, TurnSink};
pub use responses::BotMessage;

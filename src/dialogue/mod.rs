//! Dialogue: deciding what to say. Rules, responses, names, conversation memory,
//! the offline responder and the copilot pipeline; no HTTP or socket types.

pub mod conversation;
pub mod copilot;
pub mod names;
pub mod offline;
pub mod prompt;
pub mod responses;

pub use conversation::{Conversations, Role, Turn};
pub use copilot::{Copilot, LlmSetup, Reply, TurnResult, UserMessage};
pub use offline::OfflineResponder;
pub use responses::BotMessage;

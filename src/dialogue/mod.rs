//! Dialogue: deciding what to say. Names, conversation memory and the offline
//! responder live here; no HTTP or socket types.

pub mod conversation;
pub mod copilot;
pub mod names;
pub mod offline;

pub use conversation::{Conversations, Role, Turn};
pub use copilot::{Copilot, Reply};
pub use offline::OfflineResponder;

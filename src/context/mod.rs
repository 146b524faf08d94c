//! Context: what each user has been doing, kept bounded and summarised.
//! Knows nothing about HTTP or sockets.

mod dedupe;
pub mod store;
pub mod summariser;

pub use store::{
    ContextStore, Counts, Erased, Restored, SessionView, StoredSummary, SummaryObserver,
    UserActivity,
};
pub use summariser::{OfflineSummariser, Summariser, SummaryError};

#[cfg(test)]
mod tests;

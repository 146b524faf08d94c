//! Where accepted session state is kept before ingest answers 200: the
//! journal in `[database]` (one instance, `[store] backend = "memory"`) or the
//! shared Redis log (`backend = "redis"`, any number of instances).

use crate::domain::{Action, ProductId, SessionId, UserId, Visitor};
use crate::{db, redis};

#[derive(Clone)]
pub enum Keeper {
    Journal(db::Journal),
    Redis(redis::Log),
}

/// Why something could not be kept; the caller answers 503 and the sender retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Journal(#[from] db::journal::Error),
    #[error(transparent)]
    Redis(#[from] redis::Error),
}

/// New actions, numbered, and what else the keeper learnt.
#[derive(Debug, Default)]
pub struct Kept {
    pub actions: Vec<(u64, Action)>,
    /// Deliveries another instance had already taken (the local de-dupe
    /// caught the rest before).
    pub duplicates: usize,
    /// The sessions among them whose offers this instance makes; `None`: all.
    pub owned: Option<Vec<SessionId>>,
}

impl Keeper {
    /// Keeps actions (`keys[i]` is `actions[i]`'s delivery id); returns once
    /// they are committed (journal) or appended (Redis).
    pub async fn keep_actions(
        &self,
        product: &ProductId,
        actions: Vec<Action>,
        keys: &[&str],
    ) -> Result<Kept, Error> {
        match self {
            Keeper::Journal(journal) => {
                let first = journal.next_seqs(actions.len());
                let actions: Vec<(u64, Action)> = (first..).zip(actions).collect();
                journal.keep_actions(product, &actions, keys).await?;
                Ok(Kept {
                    actions,
                    duplicates: 0,
                    owned: None,
                })
            }
            Keeper::Redis(log) => {
                let kept = log.keep_actions(product, actions, keys).await?;
                Ok(Kept {
                    actions: kept.actions,
                    duplicates: kept.duplicates,
                    owned: Some(kept.owned),
                })
            }
        }
    }

    pub async fn keep_email(
        &self,
        product: &ProductId,
        user: &UserId,
        email: &str,
    ) -> Result<(), Error> {
        match self {
            Keeper::Journal(journal) => Ok(journal.keep_email(product, user, email).await?),
            Keeper::Redis(log) => Ok(log.keep_email(product, user, email).await?),
        }
    }

    /// Deletes everything kept about one product's user (`sessions`: the
    /// user's sessions the store knows).
    pub async fn erase_user(
        &self,
        product: &ProductId,
        user: &UserId,
        sessions: &[SessionId],
    ) -> Result<(), Error> {
        match self {
            Keeper::Journal(journal) => Ok(journal.erase_user(product, user, sessions).await?),
            Keeper::Redis(log) => Ok(log.erase_user(product, user, sessions).await?),
        }
    }

    /// Stops taking writes; what is queued is still written.
    pub fn close(&self) {
        match self {
            Keeper::Journal(journal) => journal.close(),
            Keeper::Redis(log) => log.close(),
        }
    }
}

impl crate::dialogue::ConversationSink for Keeper {
    fn keep(&self, visitor: &Visitor, key: String, state: String) {
        match self {
            Keeper::Journal(journal) => journal.keep(visitor, key, state),
            Keeper::Redis(log) => log.keep(visitor, key, state),
        }
    }
}

impl crate::proactive::ProactiveSink for Keeper {
    fn keep(&self, product: &ProductId, session: &SessionId, state: String) {
        match self {
            Keeper::Journal(journal) => journal.keep(product, session, state),
            Keeper::Redis(log) => log.keep(product, session, state),
        }
    }
}

impl crate::context::SummaryObserver for Keeper {
    fn summary_stored(&self, summary: &crate::context::StoredSummary<'_>) {
        match self {
            Keeper::Journal(journal) => journal.summary_stored(summary),
            Keeper::Redis(log) => log.summary_stored(summary),
        }
    }
}

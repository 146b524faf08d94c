//! The context store: actions per (product, session), a user → sessions index,
//! rolling summaries, and delivery de-duplication. Bounded by moka caches; all
//! locking is internal and never held across an `.await`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::dedupe::Deduper;
use super::summariser::Summariser;
use crate::config::ContextSettings;
use crate::domain::{Action, ActionKind, ProductId, SessionId, SessionOwners, UserId};
use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    product: ProductId,
    session: SessionId,
}

type UserKey = (ProductId, UserId);

#[derive(Debug, Clone)]
struct Stored {
    index: u64,
    /// The journal's sequence number (0 when nothing is journalled).
    seq: u64,
    received: Instant,
    action: Action,
}

#[derive(Debug, Clone)]
struct Summary {
    text: String,
    /// Received time of the newest action the summary covers, for lookback.
    received: Instant,
}

#[derive(Default)]
struct SessionState {
    /// Raw actions not yet covered by the summary, oldest first.
    actions: VecDeque<Stored>,
    next_index: u64,
    summary: Option<Summary>,
    /// A summary job is running; at most one per session.
    summarising: bool,
    /// Consecutive failed summaries, and when the next may start.
    failures: u32,
    retry_at: Option<Instant>,
    /// The newest action once a summary has removed it from `actions`, so
    /// answers can always pick up from it. While it is still raw it is the
    /// back of `actions` and this is `None` (no copy per recorded action).
    summarised_latest: Option<Stored>,
}

impl SessionState {
    fn latest(&self) -> Option<&Stored> {
        self.actions.back().or(self.summarised_latest.as_ref())
    }
}

struct Session {
    key: SessionKey,
    state: Mutex<SessionState>,
}

#[derive(Debug, Clone)]
struct UserSession {
    key: SessionKey,
    last_seen: Instant,
}

#[derive(Default)]
struct UserState {
    email: Option<String>,
    /// Newest first.
    sessions: Vec<UserSession>,
}

/// What a reader sees of one session.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub product: ProductId,
    pub session: SessionId,
    pub summary: Option<String>,
    /// `(index, action)`, oldest first, within the lookback window.
    pub actions: Vec<(u64, Action)>,
    /// The newest action within the lookback window, summarised or not.
    pub latest: Option<Action>,
    /// Time since the newest action arrived (zero for an empty session).
    pub idle_for: Duration,
}

impl SessionView {
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.actions.is_empty() && self.latest.is_none()
    }

    /// The SDK's read format: `Summary: …`, blank line, `Recent activity:` and
    /// numbered lines. Empty parts are left out.
    pub fn to_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(summary) = &self.summary {
            parts.push(format!("Summary: {summary}"));
        }
        if !self.actions.is_empty() {
            let lines: Vec<String> = self
                .actions
                .iter()
                .enumerate()
                .map(|(n, (index, action))| format!("{}. {}", n + 1, action.line(*index)))
                .collect();
            parts.push(format!("Recent activity:\n{}", lines.join("\n")));
        } else if let Some(latest) = &self.latest {
            // Everything is summarised: still say where the user is now.
            parts.push(format!("Latest action: {}", latest.description()));
        }
        parts.join("\n\n")
    }
}

/// A user's recent activity across their newest sessions, newest first.
#[derive(Debug, Clone, Default)]
pub struct UserActivity {
    pub email: Option<String>,
    pub sessions: Vec<SessionView>,
}

impl UserActivity {
    pub fn has_activity(&self) -> bool {
        self.sessions.iter().any(|s| !s.is_empty())
    }

    /// The newest action across the sessions.
    pub fn latest(&self) -> Option<&Action> {
        self.sessions.iter().find_map(|s| s.latest.as_ref())
    }

    /// Recent raw actions, newest first, across sessions.
    pub fn recent(&self) -> impl Iterator<Item = &Action> {
        self.sessions
            .iter()
            .flat_map(|s| s.actions.iter().rev().map(|(_, a)| a))
    }

    /// Session blocks joined by a blank line, as the prompt's activity section.
    pub fn to_text(&self) -> String {
        self.sessions
            .iter()
            .map(SessionView::to_text)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// What [`ContextStore::erase_user`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// The user's entry in the user index (email, session list).
    pub user_index: bool,
    pub sessions: Vec<SessionId>,
    pub actions: usize,
    pub summaries: usize,
}

/// Sizes for `/healthz` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub sessions: u64,
}

/// Cheap to clone; all clones share the same data.
#[derive(Clone)]
pub struct ContextStore {
    inner: Arc<Inner>,
}

struct Inner {
    lookback: Duration,
    max_actions: usize,
    summary_threshold: usize,
    summary_retry: Duration,
    max_sessions_per_user: usize,
    sessions_per_answer: usize,
    sessions: Cache<SessionKey, Arc<Session>>,
    /// IMPORTANT: keyed by (product, user): the same user id in two products
    /// is two people, and neither ever sees the other's activity.
    users: Cache<UserKey, Arc<Mutex<UserState>>>,
    seen: Deduper,
    summariser: Arc<dyn Summariser>,
    observers: Vec<Arc<dyn SummaryObserver>>,
    /// Unset: this instance summarises every session.
    owners: std::sync::OnceLock<Arc<dyn SessionOwners>>,
    tasks: TaskTracker,
    metrics: Metrics,
}

/// A summary the moment it replaced raw actions.
#[derive(Debug, Clone, Copy)]
pub struct StoredSummary<'a> {
    pub product: &'a ProductId,
    pub session: &'a SessionId,
    pub text: &'a str,
    /// How many raw actions it replaced.
    pub replaces: usize,
    /// The highest journal sequence number among them.
    pub covers_seq: u64,
    /// The index the session's next action gets.
    pub next_index: u64,
    /// How long ago the newest of them was received.
    pub newest_age: Duration,
}

/// Told of every summary the moment it is stored (the activity stream
/// publishes it, the journal keeps it). Called under the session's lock: it
/// must not block.
pub trait SummaryObserver: Send + Sync {
    fn summary_stored(&self, summary: &StoredSummary<'_>);
}

/// An action read back from the journal at start-up.
#[derive(Debug, Clone)]
pub struct Restored {
    pub seq: u64,
    pub action: Action,
    /// How long ago it was received.
    pub age: Duration,
}

impl ContextStore {
    /// Summary jobs are spawned on `tasks` so shutdown can wait for them.
    pub fn new(
        settings: &ContextSettings,
        summariser: Arc<dyn Summariser>,
        tasks: TaskTracker,
        metrics: Metrics,
    ) -> Self {
        Self::observed(settings, summariser, Vec::new(), tasks, metrics)
    }

    /// As `new`, telling `observer` of every stored summary.
    pub fn observed(
        settings: &ContextSettings,
        summariser: Arc<dyn Summariser>,
        observers: Vec<Arc<dyn SummaryObserver>>,
        tasks: TaskTracker,
        metrics: Metrics,
    ) -> Self {
        let idle = Duration::from_secs(settings.idle_seconds.max(1));
        Self {
            inner: Arc::new(Inner {
                lookback: Duration::from_secs_f64(settings.lookback_seconds),
                max_actions: settings.max_actions,
                summary_threshold: settings.summary_threshold,
                summary_retry: Duration::from_secs_f64(settings.summary_retry_seconds.max(0.0)),
                max_sessions_per_user: settings.max_sessions_per_user,
                sessions_per_answer: settings.sessions_per_answer,
                sessions: Cache::builder()
                    .max_capacity(settings.max_sessions)
                    .time_to_idle(idle)
                    .build(),
                users: Cache::builder()
                    .max_capacity(settings.max_users)
                    .time_to_idle(idle)
                    .build(),
                seen: Deduper::new(
                    settings.dedupe_capacity,
                    Duration::from_secs(settings.dedupe_ttl_seconds.max(1)),
                ),
                summariser,
                observers,
                owners: std::sync::OnceLock::new(),
                tasks,
                metrics,
            }),
        }
    }

    /// From now on only sessions `owners` names are summarised here; the
    /// others' summaries arrive through [`ContextStore::apply_summary`].
    pub fn set_owners(&self, owners: Arc<dyn SessionOwners>) {
        if self.inner.owners.set(owners).is_err() {
            tracing::warn!("summary owners set twice; keeping the first");
        }
    }

    /// A summary another instance made: it replaces the raw actions it
    /// covers (by sequence number), as if it had been made here.
    pub fn apply_summary(
        &self,
        product: &ProductId,
        session: &SessionId,
        text: String,
        covers_seq: u64,
        next_index: u64,
        age: Duration,
    ) {
        let session = self.put_summary(product, session, text, next_index, age);
        let mut state = session.state.lock();
        if state.actions.back().is_some_and(|b| b.seq <= covers_seq) {
            state.summarised_latest = state.actions.back().cloned();
        }
        state.actions.retain(|s| s.seq > covers_seq);
        state.actions.shrink_to(self.inner.summary_threshold);
    }

    /// True the first time a product delivers an event with this key; false for
    /// a retried delivery. Atomic, so concurrent retries count once.
    pub fn first_delivery(&self, product: &ProductId, dedupe_key: &str) -> bool {
        self.inner.seen.first(product.as_str(), dedupe_key)
    }

    /// Forgets that a delivery was seen: it could not be kept, so its retry
    /// must not count as a duplicate.
    pub fn forget_delivery(&self, product: &ProductId, dedupe_key: &str) {
        self.inner.seen.forget(product.as_str(), dedupe_key);
    }

    /// Remembers a delivery id read back from the journal.
    pub fn restore_delivery(&self, product: &ProductId, dedupe_key: &str) {
        self.inner.seen.first(product.as_str(), dedupe_key);
    }

    /// Stores actions (in delivery order) and updates the user index.
    pub fn record(&self, product: &ProductId, actions: Vec<Action>) {
        self.record_sequenced(product, actions.into_iter().map(|a| (0, a)));
    }

    /// As `record`, each action with its journal sequence number.
    pub fn record_sequenced(
        &self,
        product: &ProductId,
        actions: impl IntoIterator<Item = (u64, Action)>,
    ) {
        let now = Instant::now();
        self.record_at(product, actions.into_iter().map(|(seq, a)| (seq, a, now)));
    }

    /// Puts back what the journal kept: a session's summary first, then its
    /// raw actions with their original ages, through the same path as
    /// `record` (so caps and merging apply as they did).
    pub fn restore(&self, product: &ProductId, actions: Vec<Restored>) {
        let now = Instant::now();
        self.record_at(
            product,
            actions.into_iter().map(|r| {
                let received = now.checked_sub(r.age).unwrap_or(now);
                (r.seq, r.action, received)
            }),
        );
    }

    /// Puts back a stored summary (before the session's raw actions).
    pub fn restore_summary(
        &self,
        product: &ProductId,
        session: &SessionId,
        text: String,
        next_index: u64,
        age: Duration,
    ) {
        self.put_summary(product, session, text, next_index, age);
    }

    /// Sets a session's summary; returns the session.
    fn put_summary(
        &self,
        product: &ProductId,
        session: &SessionId,
        text: String,
        next_index: u64,
        age: Duration,
    ) -> Arc<Session> {
        let now = Instant::now();
        let key = SessionKey {
            product: product.clone(),
            session: session.clone(),
        };
        let session = self.inner.sessions.get_with(key.clone(), || {
            Arc::new(Session {
                key,
                state: Mutex::new(SessionState::default()),
            })
        });
        let mut state = session.state.lock();
        state.next_index = state.next_index.max(next_index);
        state.summary = Some(Summary {
            text,
            received: now.checked_sub(age).unwrap_or(now),
        });
        drop(state);
        session
    }

    fn record_at(
        &self,
        product: &ProductId,
        actions: impl Iterator<Item = (u64, Action, Instant)>,
    ) {
        for (seq, mut action, now) in actions {
            let key = SessionKey {
                product: product.clone(),
                session: action.session_id.clone(),
            };
            self.index_user(&action, &key, now);
            // `get` first: `get_with` takes the key by value, a copy of two
            // strings per action for the common case of a known session.
            let session = match self.inner.sessions.get(&key) {
                Some(session) => session,
                None => self.inner.sessions.get_with(key.clone(), || {
                    Arc::new(Session {
                        key,
                        state: Mutex::new(SessionState::default()),
                    })
                }),
            };
            // Kept actions share their session's id instead of each holding
            // the copy its event was parsed into.
            action.session_id = session.key.session.clone();
            let job = {
                let mut state = session.state.lock();
                if is_submit_of_latest_click(state.latest(), &action) {
                    // The click already says it; "submitted the form" adds nothing.
                    continue;
                }
                let stored = Stored {
                    index: state.next_index,
                    seq,
                    received: now,
                    action,
                };
                state.next_index += 1;
                state.summarised_latest = None;
                state.actions.push_back(stored);
                while state.actions.len() > self.inner.max_actions {
                    state.actions.pop_front();
                }
                if self
                    .inner
                    .owners
                    .get()
                    .is_some_and(|o| !o.owns(&session.key.product, &session.key.session))
                {
                    None
                } else {
                    self.take_summary_job(&mut state, now)
                }
            };
            if let Some(job) = job {
                let inner = Arc::clone(&self.inner);
                let session = Arc::clone(&session);
                self.inner
                    .tasks
                    .spawn(async move { inner.run_summaries(session, job).await });
            }
        }
    }

    fn index_user(&self, action: &Action, key: &SessionKey, now: Instant) {
        let user_key = (key.product.clone(), action.user_id.clone());
        let user = match self.inner.users.get(&user_key) {
            Some(user) => user,
            None => self.inner.users.get_with(user_key, Default::default),
        };
        let mut user = user.lock();
        if let Some(email) = &action.email
            && user.email.as_ref() != Some(email)
        {
            user.email = Some(email.clone());
        }
        // Most actions continue the user's newest session: just touch it.
        if let Some(newest) = user.sessions.first_mut()
            && &newest.key == key
        {
            newest.last_seen = now;
            return;
        }
        user.sessions.retain(|s| &s.key != key);
        user.sessions.insert(
            0,
            UserSession {
                key: key.clone(),
                last_seen: now,
            },
        );
        user.sessions.truncate(self.inner.max_sessions_per_user);
    }

    /// Starts a summary when enough raw actions wait and none is running.
    fn take_summary_job(&self, state: &mut SessionState, now: Instant) -> Option<SummaryJob> {
        if state.summarising
            || state.actions.len() < self.inner.summary_threshold
            || state.retry_at.is_some_and(|at| now < at)
        {
            return None;
        }
        state.summarising = true;
        Some(SummaryJob::snapshot(state))
    }

    /// One session's view, or `None` if the store does not hold it. Only
    /// tests read one session whole; the server reads users or `inspect`s.
    #[cfg(test)]
    pub fn session(&self, product: &ProductId, session: &SessionId) -> Option<SessionView> {
        let key = SessionKey {
            product: product.clone(),
            session: session.clone(),
        };
        let session = self.inner.sessions.get(&key)?;
        Some(self.inner.view(&session, Instant::now()))
    }

    /// Runs `f` on one session's recent actions under its lock, without copying
    /// them: oldest first, within the lookback window, ending with the newest
    /// action even when a summary covers it; and the time since that action.
    /// `None` if the store does not hold the session. `f` must be quick.
    pub fn inspect<R>(
        &self,
        product: &ProductId,
        session: &SessionId,
        f: impl FnOnce(&[&Action], Duration) -> R,
    ) -> Option<R> {
        let key = SessionKey {
            product: product.clone(),
            session: session.clone(),
        };
        let session = self.inner.sessions.get(&key)?;
        let now = Instant::now();
        let lookback = self.inner.lookback;
        let fresh = |s: &&Stored| now.saturating_duration_since(s.received) <= lookback;
        let state = session.state.lock();
        let mut actions: Vec<&Action> = state
            .actions
            .iter()
            .filter(fresh)
            .map(|s| &s.action)
            .collect();
        if let Some(latest) = state.summarised_latest.as_ref().filter(fresh) {
            actions.push(&latest.action);
        }
        let idle_for = state.latest().map_or(Duration::ZERO, |s| {
            now.saturating_duration_since(s.received)
        });
        Some(f(&actions, idle_for))
    }

    /// A product's sessions with an action in the last `within`, most
    /// recently active first, at most `limit` (the console's live view).
    /// Walks every session the store holds: for a person watching, not a hot path.
    pub fn active_sessions(
        &self,
        product: &ProductId,
        within: Duration,
        limit: usize,
    ) -> Vec<SessionView> {
        let now = Instant::now();
        let mut views: Vec<SessionView> = self
            .inner
            .sessions
            .iter()
            .filter(|(key, _)| &key.product == product)
            .map(|(_, session)| self.inner.view(&session, now))
            .filter(|view| view.latest.is_some() && view.idle_for <= within)
            .collect();
        views.sort_by_key(|view| view.idle_for);
        views.truncate(limit);
        views
    }

    /// The (product, session) keys of the user's sessions within the lookback
    /// window, newest first: what the index knows, without reading the sessions.
    pub fn user_sessions(&self, product: &ProductId, user: &UserId) -> Vec<(ProductId, SessionId)> {
        let Some(entry) = self.inner.users.get(&(product.clone(), user.clone())) else {
            return Vec::new();
        };
        let now = Instant::now();
        entry
            .lock()
            .sessions
            .iter()
            .filter(|s| now.saturating_duration_since(s.last_seen) <= self.inner.lookback)
            .map(|s| (s.key.product.clone(), s.key.session.clone()))
            .collect()
    }

    /// The product's user's newest sessions within the lookback window, and
    /// their email.
    pub fn user_activity(&self, product: &ProductId, user: &UserId) -> UserActivity {
        let Some(entry) = self.inner.users.get(&(product.clone(), user.clone())) else {
            return UserActivity::default();
        };
        let now = Instant::now();
        let (email, keys) = {
            let state = entry.lock();
            let keys: Vec<SessionKey> = state
                .sessions
                .iter()
                .filter(|s| now.saturating_duration_since(s.last_seen) <= self.inner.lookback)
                .map(|s| s.key.clone())
                .collect();
            (state.email.clone(), keys)
        };
        let sessions = keys
            .iter()
            .filter_map(|key| self.inner.sessions.get(key))
            .map(|session| self.inner.view(&session, now))
            .filter(|view| !view.is_empty())
            .take(self.inner.sessions_per_answer)
            .collect();
        UserActivity { email, sessions }
    }

    /// Remembers a user's email without an action (from `$identify`, say).
    pub fn note_email(&self, product: &ProductId, user: &UserId, email: &str) {
        let entry = self
            .inner
            .users
            .get_with((product.clone(), user.clone()), Default::default);
        entry.lock().email = Some(email.to_owned());
    }

    /// The email a user was last seen with, even outside the lookback window.
    pub fn user_email(&self, product: &ProductId, user: &UserId) -> Option<String> {
        self.inner
            .users
            .get(&(product.clone(), user.clone()))?
            .lock()
            .email
            .clone()
    }

    /// Erases everything held about one product's user: the index entry and
    /// every session of that product that holds one of their actions (or that
    /// the index lists). Walks the product's sessions, so it is for a deletion
    /// request, not a hot path.
    pub fn erase_user(&self, product: &ProductId, user: &UserId) -> Erased {
        let mut erased = Erased::default();
        let indexed: Vec<SessionKey> =
            match self.inner.users.remove(&(product.clone(), user.clone())) {
                Some(entry) => {
                    erased.user_index = true;
                    entry
                        .lock()
                        .sessions
                        .iter()
                        .map(|s| s.key.clone())
                        .collect()
                }
                None => Vec::new(),
            };
        let doomed: Vec<Arc<Session>> = self
            .inner
            .sessions
            .iter()
            .filter(|(key, _)| &key.product == product)
            .filter(|(key, session)| {
                indexed.contains(key) || {
                    let state = session.state.lock();
                    state
                        .actions
                        .iter()
                        .chain(state.summarised_latest.as_ref())
                        .any(|s| &s.action.user_id == user)
                }
            })
            .map(|(_, session)| session)
            .collect();
        for session in doomed {
            {
                let state = session.state.lock();
                erased.actions += state.actions.len();
                erased.summaries += usize::from(state.summary.is_some());
            }
            erased.sessions.push(session.key.session.clone());
            self.inner.sessions.invalidate(&session.key);
        }
        erased
    }

    /// Raw actions held across all sessions. Walks every session (one short
    /// lock each), so it is for a metrics scrape, not for a hot path.
    pub fn action_count(&self) -> u64 {
        self.inner
            .sessions
            .iter()
            .map(|(_, session)| session.state.lock().actions.len() as u64)
            .sum()
    }

    pub fn counts(&self) -> Counts {
        self.inner.users.run_pending_tasks();
        self.inner.sessions.run_pending_tasks();
        Counts {
            users: self.inner.users.entry_count(),
            sessions: self.inner.sessions.entry_count(),
        }
    }
}

/// A form submit that follows a click on the same page within two seconds is
/// that click's effect (pressing "Save changes" submits the form), not a new step.
fn is_submit_of_latest_click(latest: Option<&Stored>, action: &Action) -> bool {
    latest.is_some_and(|l| {
        action.kind == ActionKind::Submit
            && l.action.kind == ActionKind::Click
            && l.action.page == action.page
            && (action.timestamp - l.action.timestamp)
                .num_milliseconds()
                .abs()
                <= 2_000
    })
}

/// What a summary covers: taken under the session lock.
struct SummaryJob {
    previous: Option<String>,
    actions: Vec<Action>,
    /// Highest index covered; raw actions up to it go when the summary lands.
    upto: u64,
    /// Highest journal sequence number covered.
    upto_seq: u64,
    newest_received: Instant,
}

impl SummaryJob {
    fn snapshot(state: &SessionState) -> Self {
        let (upto, newest_received) = state
            .actions
            .back()
            .map(|s| (s.index, s.received))
            .unwrap_or((0, Instant::now()));
        Self {
            previous: state.summary.as_ref().map(|s| s.text.clone()),
            actions: state.actions.iter().map(|s| s.action.clone()).collect(),
            upto,
            upto_seq: state.actions.iter().map(|s| s.seq).max().unwrap_or(0),
            newest_received,
        }
    }
}

impl Inner {
    fn view(&self, session: &Session, now: Instant) -> SessionView {
        let fresh = |received: Instant| now.saturating_duration_since(received) <= self.lookback;
        let state = session.state.lock();
        SessionView {
            product: session.key.product.clone(),
            session: session.key.session.clone(),
            summary: state
                .summary
                .as_ref()
                .filter(|s| fresh(s.received))
                .map(|s| s.text.clone()),
            actions: state
                .actions
                .iter()
                .filter(|s| fresh(s.received))
                .map(|s| (s.index, s.action.clone()))
                .collect(),
            latest: state
                .latest()
                .filter(|s| fresh(s.received))
                .map(|s| s.action.clone()),
            idle_for: state.latest().map_or(Duration::ZERO, |s| {
                now.saturating_duration_since(s.received)
            }),
        }
    }

    /// Runs summaries for one session until fewer than `threshold` raw actions
    /// wait. IMPORTANT: the new summary and the removal of the actions it covers
    /// happen under one lock, so a reader sees the old state or the new one,
    /// never a gap.
    async fn run_summaries(&self, session: Arc<Session>, mut job: SummaryJob) {
        loop {
            let result = self
                .summariser
                .summarise(job.previous.as_deref(), &job.actions)
                .await;
            let mut state = session.state.lock();
            match result {
                Ok(text) => {
                    state.failures = 0;
                    state.retry_at = None;
                    state.summary = Some(Summary {
                        text,
                        received: job.newest_received,
                    });
                    if state.actions.back().is_some_and(|b| b.index <= job.upto) {
                        state.summarised_latest = state.actions.back().cloned();
                    }
                    state.actions.retain(|s| s.index > job.upto);
                    // `retain` keeps the capacity; across 10,000 sessions the
                    // emptied slots were most of the store's memory.
                    state.actions.shrink_to(self.summary_threshold);
                    Metrics::count(&self.metrics.summaries, "stored", 1);
                    if let Some(summary) = &state.summary {
                        let stored = StoredSummary {
                            product: &session.key.product,
                            session: &session.key.session,
                            text: &summary.text,
                            replaces: job.actions.len(),
                            covers_seq: job.upto_seq,
                            next_index: job.upto + 1,
                            newest_age: job.newest_received.elapsed(),
                        };
                        for observer in &self.observers {
                            observer.summary_stored(&stored);
                        }
                    }
                    tracing::debug!(
                        session = %session.key.session,
                        covered = job.actions.len(),
                        "summary stored"
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        session = %session.key.session,
                        %error,
                        "summary failed; raw actions kept"
                    );
                    state.summarising = false;
                    // Back off: without this every new action would call the
                    // failing backend again.
                    let factor = 1u32 << state.failures.min(4);
                    state.failures = state.failures.saturating_add(1);
                    state.retry_at = Some(Instant::now() + self.summary_retry * factor);
                    Metrics::count(&self.metrics.summaries, "failed", 1);
                    return;
                }
            }
            if state.actions.len() < self.summary_threshold {
                state.summarising = false;
                return;
            }
            job = SummaryJob::snapshot(&state);
        }
    }
}

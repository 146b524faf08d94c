//! Proactive help: a state machine per (product, session) and configured
//! triggers, evaluated on every ingested batch (and on a periodic tick for
//! dwell). A match is offered to every socket the user has open through a
//! [`Notifier`]; knows nothing about Socket.IO itself.

pub mod state;
pub mod triggers;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use moka::sync::Cache;
use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::state::{Blocked, SessionState, Timing};
use self::triggers::Activity;
use crate::config::{ProactiveSettings, TriggerSettings};
use crate::context::ContextStore;
use crate::dialogue::BotMessage;
use crate::domain::{ProductId, SessionId, SessionOwners, UserId, Visitor};
use crate::metrics::Metrics;
use crate::nlu::Button;

/// How an offer went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent to this many open sockets.
    Delivered(usize),
    /// The user has no socket open: the offer is dropped, not queued.
    NoSocket,
}

/// Pushes an offer to a user's open chats (and records it in their history).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Only to sockets whose identity as this product's user was established.
    /// `response` names the domain response to show (and record as the bot's
    /// action); `message` is what to show without one.
    async fn offer(
        &self,
        product: &ProductId,
        user: &UserId,
        response: Option<&str>,
        message: &BotMessage,
    ) -> Delivery;
}

/// Keeps proactive state across restarts (the journal). Must not block.
pub trait ProactiveSink: Send + Sync {
    fn keep(&self, product: &ProductId, session: &SessionId, state: String);
}

/// What one evaluation of one session came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No trigger matched.
    NoMatch,
    Fired {
        trigger: String,
    },
    /// A trigger matched, but the last interaction ended too recently.
    SuppressedByCooldown {
        trigger: String,
    },
    /// A trigger matched during an offer or a chat.
    SuppressedByState {
        trigger: String,
        state: &'static str,
    },
    /// A trigger matched, but the user has no chat open.
    NoSocket {
        trigger: String,
    },
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::NoMatch => "no_match",
            Outcome::Fired { .. } => "fired",
            Outcome::SuppressedByCooldown { .. } => "cooldown",
            Outcome::SuppressedByState { .. } => "state",
            Outcome::NoSocket { .. } => "no_socket",
        }
    }
}

type Key = (ProductId, SessionId);

#[derive(Clone)]
pub struct Proactive {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ProactiveSettings,
    defaults: Timing,
    store: ContextStore,
    states: Cache<Key, Arc<Mutex<SessionState>>>,
    /// Set once the socket layer exists (it is built after this).
    notifier: OnceLock<Arc<dyn Notifier>>,
    sink: OnceLock<Arc<dyn ProactiveSink>>,
    /// Unset: this instance makes every session's offers.
    owners: OnceLock<Arc<dyn SessionOwners>>,
    metrics: Metrics,
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Proactive {
    pub fn new(settings: &ProactiveSettings, store: ContextStore, metrics: Metrics) -> Self {
        let defaults = Timing {
            interaction_timeout: seconds(settings.interaction_timeout_seconds),
            cooldown: seconds(settings.cooldown_seconds),
        };
        // A state outlives its timeout and cooldown, then is forgotten.
        let idle = defaults.interaction_timeout + defaults.cooldown + Duration::from_secs(600);
        Self {
            inner: Arc::new(Inner {
                settings: settings.clone(),
                defaults,
                store,
                states: Cache::builder()
                    .max_capacity(settings.max_sessions)
                    .time_to_idle(idle)
                    .build(),
                notifier: OnceLock::new(),
                sink: OnceLock::new(),
                owners: OnceLock::new(),
                metrics,
            }),
        }
    }

    pub fn set_notifier(&self, notifier: Arc<dyn Notifier>) {
        if self.inner.notifier.set(notifier).is_err() {
            tracing::warn!("proactive notifier set twice; keeping the first");
        }
    }

    /// From now on the background loop looks only at sessions `owners`
    /// names (ingest already asks only about those).
    pub fn set_owners(&self, owners: Arc<dyn SessionOwners>) {
        if self.inner.owners.set(owners).is_err() {
            tracing::warn!("proactive owners set twice; keeping the first");
        }
    }

    /// Keeps every change of state through `sink` from now on.
    pub fn set_sink(&self, sink: Arc<dyn ProactiveSink>) {
        if self.inner.sink.set(sink).is_err() {
            tracing::warn!("proactive sink set twice; keeping the first");
        }
    }

    /// Puts back a state the sink kept, `age` after it was kept.
    pub fn restore(
        &self,
        product: ProductId,
        session: SessionId,
        state: &str,
        age: Duration,
    ) -> bool {
        let Ok(saved) = serde_json::from_str::<state::Saved>(state) else {
            return false;
        };
        let Some(state) = SessionState::restore(&saved, age, Instant::now()) else {
            return false;
        };
        self.inner
            .states
            .insert((product, session), Arc::new(Mutex::new(state)));
        true
    }

    fn keep(&self, key: &Key, state: &SessionState) {
        if let Some(sink) = self.inner.sink.get()
            && let Ok(json) = serde_json::to_string(&state.save(Instant::now()))
        {
            sink.keep(&key.0, &key.1, json);
        }
    }

    fn state(&self, key: &Key) -> Arc<Mutex<SessionState>> {
        let defaults = self.inner.defaults;
        self.inner.states.get_with(key.clone(), || {
            Arc::new(Mutex::new(SessionState::new(defaults, Instant::now())))
        })
    }

    /// The session's phase (thinking, proactive, reactive), if it is tracked.
    pub fn phase(&self, product: &ProductId, session: &SessionId) -> Option<&'static str> {
        let state = self.inner.states.get(&(product.clone(), session.clone()))?;
        // Read only: timeouts are applied by the next evaluation, as always.
        let phase = state.lock().phase();
        Some(phase.as_str())
    }

    /// New actions arrived for these sessions: evaluate their triggers.
    pub async fn on_actions(&self, product: &ProductId, sessions: &[SessionId]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        if !self.inner.settings.enabled {
            return outcomes;
        }
        for session in sessions {
            let key = (product.clone(), session.clone());
            // Tracked from its first action on, so ticks can find it (dwell).
            self.state(&key);
            outcomes.push(self.evaluate(&key, false).await);
        }
        outcomes
    }

    /// The user wrote in a chat: every recent session of theirs becomes
    /// reactive, so no offer interrupts them. Anonymous visitors have none.
    pub fn on_user_message(&self, visitor: &Visitor) {
        let Some((product, user)) = visitor.identity() else {
            return;
        };
        let now = Instant::now();
        for key in self.inner.store.user_sessions(product, user) {
            let state = self.state(&key);
            let mut state = state.lock();
            state.user_message(self.inner.defaults, now);
            self.keep(&key, &state);
        }
    }

    /// Forgets the state machines of these sessions (a user's data deletion);
    /// returns how many there were.
    pub fn forget(&self, product: &ProductId, sessions: &[SessionId]) -> usize {
        sessions
            .iter()
            .filter(|session| {
                self.inner
                    .states
                    .remove(&(product.clone(), (*session).clone()))
                    .is_some()
            })
            .count()
    }

    /// One step of the background loop: dwell triggers for every tracked session.
    pub async fn tick(&self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        if !self.inner.settings.enabled {
            return outcomes;
        }
        let keys: Vec<Key> = self
            .inner
            .states
            .iter()
            .map(|(k, _)| (*k).clone())
            .filter(|(product, session)| {
                self.inner
                    .owners
                    .get()
                    .is_none_or(|o| o.owns(product, session))
            })
            .collect();
        for key in keys {
            outcomes.push(self.evaluate(&key, true).await);
        }
        outcomes
    }

    /// Runs [`Proactive::tick`] every `tick_seconds` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(seconds(self.inner.settings.tick_seconds));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => { self.tick().await; }
            }
        }
    }

    async fn evaluate(&self, key: &Key, on_tick: bool) -> Outcome {
        let outcome = self.evaluate_inner(key, on_tick).await;
        if outcome != Outcome::NoMatch {
            tracing::debug!(product = %key.0, session = %key.1, ?outcome, "proactive evaluation");
            Metrics::count(&self.inner.metrics.proactive, outcome.label(), 1);
        }
        outcome
    }

    async fn evaluate_inner(&self, key: &Key, on_tick: bool) -> Outcome {
        // Matched under the session's lock on borrowed actions; only the
        // trigger's position and the user leave it.
        let found = self
            .inner
            .store
            .inspect(&key.0, &key.1, |actions, idle_for| {
                let activity = Activity { actions, idle_for };
                let trigger = self
                    .inner
                    .settings
                    .triggers
                    .iter()
                    .position(|t| triggers::matches(&t.rule, activity, on_tick))?;
                let user = actions.last()?.user_id.clone();
                Some((trigger, user))
            });
        let Some(Some((position, user))) = found else {
            return Outcome::NoMatch;
        };
        let Some(trigger) = self.inner.settings.triggers.get(position) else {
            return Outcome::NoMatch;
        };
        let id = trigger.id.clone();
        let state = self.state(key);
        // Claim the offer under the lock, so concurrent batches fire it once.
        let before = {
            let mut state = state.lock();
            let before = state.clone();
            match state.to_proactive(self.timing(trigger), Instant::now()) {
                Ok(()) => before,
                Err(Blocked::Cooldown) => return Outcome::SuppressedByCooldown { trigger: id },
                Err(Blocked::State(phase)) => {
                    return Outcome::SuppressedByState {
                        trigger: id,
                        state: phase.as_str(),
                    };
                }
            }
        };
        let delivery = match self.inner.notifier.get() {
            Some(notifier) => {
                notifier
                    .offer(
                        &key.0,
                        &user,
                        trigger.response.as_deref(),
                        &offer_message(trigger),
                    )
                    .await
            }
            None => Delivery::NoSocket,
        };
        match delivery {
            Delivery::Delivered(_) => {
                self.keep(key, &state.lock());
                Outcome::Fired { trigger: id }
            }
            Delivery::NoSocket => {
                // Nobody saw it: undo the claim so a later chance is not lost.
                *state.lock() = before;
                Outcome::NoSocket { trigger: id }
            }
        }
    }

    fn timing(&self, trigger: &TriggerSettings) -> Timing {
        Timing {
            interaction_timeout: trigger
                .interaction_timeout_seconds
                .map_or(self.inner.defaults.interaction_timeout, seconds),
            cooldown: trigger
                .cooldown_seconds
                .map_or(self.inner.defaults.cooldown, seconds),
        }
    }
}

fn offer_message(trigger: &TriggerSettings) -> BotMessage {
    BotMessage::Text {
        text: trigger.message.clone(),
        buttons: trigger
            .quick_replies
            .iter()
            .map(|q| Button {
                title: q.title.clone(),
                payload: q.payload.clone(),
            })
            .collect(),
        metadata: None,
    }
}

#[cfg(test)]
mod tests;

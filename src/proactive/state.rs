//! The per-session state machine, as the Autoplay SDK defines it (v2):
//! thinking / proactive / reactive. A proactive offer starts only from thinking
//! and outside a cooldown; a user message moves thinking to reactive (and clears
//! the cooldown); proactive and reactive return to thinking only when the
//! interaction times out, which starts a cooldown. Pure: callers pass `now`.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Thinking,
    Proactive,
    Reactive,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Thinking => "thinking",
            Phase::Proactive => "proactive",
            Phase::Reactive => "reactive",
        }
    }
}

/// Why an offer may not be delivered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Proactive or reactive: an interaction is going on.
    State(Phase),
    /// Thinking, but the last interaction ended less than a cooldown ago.
    Cooldown,
}

/// Timeout and cooldown of one interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interaction_timeout: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionState {
    phase: Phase,
    last_interaction: Instant,
    /// Timing of the interaction in progress (a trigger may override it).
    timing: Timing,
    cooldown_until: Option<Instant>,
}

impl SessionState {
    pub fn new(defaults: Timing, now: Instant) -> Self {
        Self {
            phase: Phase::Thinking,
            last_interaction: now,
            timing: defaults,
            cooldown_until: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Applies timeouts: an interaction idle past its timeout ends, and its
    /// cooldown starts; an expired cooldown is cleared.
    pub fn tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Thinking => {
                if self.cooldown_until.is_some_and(|until| now >= until) {
                    self.cooldown_until = None;
                }
            }
            Phase::Proactive | Phase::Reactive => {
                if now.saturating_duration_since(self.last_interaction)
                    > self.timing.interaction_timeout
                {
                    self.phase = Phase::Thinking;
                    self.cooldown_until = Some(now + self.timing.cooldown);
                }
            }
        }
    }

    /// Whether an offer may be delivered now (after a tick).
    pub fn can_deliver(&mut self, now: Instant) -> Result<(), Blocked> {
        self.tick(now);
        match self.phase {
            Phase::Thinking if self.cooldown_until.is_some() => Err(Blocked::Cooldown),
            Phase::Thinking => Ok(()),
            other => Err(Blocked::State(other)),
        }
    }

    /// An offer was delivered: thinking → proactive with the trigger's timing.
    pub fn to_proactive(&mut self, timing: Timing, now: Instant) -> Result<(), Blocked> {
        self.can_deliver(now)?;
        self.phase = Phase::Proactive;
        self.timing = timing;
        self.last_interaction = now;
        Ok(())
    }

    /// The user wrote: thinking → reactive (cooldown cleared); in an ongoing
    /// interaction it only resets the timer. Never proactive → reactive directly.
    pub fn user_message(&mut self, defaults: Timing, now: Instant) {
        self.tick(now);
        if self.phase == Phase::Thinking {
            self.phase = Phase::Reactive;
            self.timing = defaults;
            self.cooldown_until = None;
        }
        self.last_interaction = now;
    }
}

/// A state as the journal keeps it: times as milliseconds before (`_ago`)
/// or after (`_in`) the moment it was saved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    phase: String,
    last_interaction_ago_ms: u64,
    interaction_timeout_ms: u64,
    cooldown_ms: u64,
    cooldown_in_ms: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SessionState {
    pub fn save(&self, now: Instant) -> Saved {
        Saved {
            phase: self.phase.as_str().to_owned(),
            last_interaction_ago_ms: ms(now.saturating_duration_since(self.last_interaction)),
            interaction_timeout_ms: ms(self.timing.interaction_timeout),
            cooldown_ms: ms(self.timing.cooldown),
            cooldown_in_ms: self
                .cooldown_until
                .map(|until| ms(until.saturating_duration_since(now))),
        }
    }

    /// The state `saved` described, `age` after it was saved.
    pub fn restore(saved: &Saved, age: Duration, now: Instant) -> Option<Self> {
        let phase = match saved.phase.as_str() {
            "thinking" => Phase::Thinking,
            "proactive" => Phase::Proactive,
            "reactive" => Phase::Reactive,
            _ => return None,
        };
        let ago = Duration::from_millis(saved.last_interaction_ago_ms) + age;
        Some(Self {
            phase,
            last_interaction: now.checked_sub(ago).unwrap_or(now),
            timing: Timing {
                interaction_timeout: Duration::from_millis(saved.interaction_timeout_ms),
                cooldown: Duration::from_millis(saved.cooldown_ms),
            },
            cooldown_until: saved
                .cooldown_in_ms
                .map(|left| now + Duration::from_millis(left).saturating_sub(age)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        interaction_timeout: Duration::from_secs(60),
        cooldown: Duration::from_secs(120),
    };

    #[test]
    fn a_saved_state_comes_back_as_it_was_less_the_time_it_was_away() {
        let now = Instant::now();
        let mut state = SessionState::new(T, now);
        state.to_proactive(T, now).unwrap();
        let saved = state.save(now);
        let back = SessionState::restore(&saved, Duration::from_secs(10), now).unwrap();
        assert_eq!(back.phase(), Phase::Proactive);
        assert_eq!(
            now.duration_since(back.last_interaction),
            Duration::from_secs(10)
        );
        let mut cooling = SessionState::new(T, now);
        cooling.user_message(T, now);
        cooling.tick(now + Duration::from_secs(61));
        let saved = cooling.save(now + Duration::from_secs(61));
        assert_eq!(saved.cooldown_in_ms, Some(120_000));
        let mut back = SessionState::restore(&saved, Duration::from_secs(20), now).unwrap();
        assert_eq!(back.can_deliver(now), Err(Blocked::Cooldown));
        assert_eq!(back.can_deliver(now + Duration::from_secs(101)), Ok(()));
    }

    #[test]
    fn an_offer_starts_only_from_thinking_and_outside_cooldown() {
        let start = Instant::now();
        let mut s = SessionState::new(T, start);
        assert_eq!(s.to_proactive(T, start), Ok(()));
        assert_eq!(s.phase(), Phase::Proactive);
        assert_eq!(
            s.to_proactive(T, start),
            Err(Blocked::State(Phase::Proactive))
        );

        // The interaction times out: back to thinking, cooldown running.
        let later = start + Duration::from_secs(61);
        assert_eq!(s.can_deliver(later), Err(Blocked::Cooldown));
        assert_eq!(s.phase(), Phase::Thinking);
        assert_eq!(
            s.can_deliver(later + Duration::from_secs(119)),
            Err(Blocked::Cooldown)
        );
        assert_eq!(s.can_deliver(later + Duration::from_secs(120)), Ok(()));
    }

    #[test]
    fn a_user_message_moves_to_reactive_and_blocks_offers_until_it_times_out() {
        let start = Instant::now();
        let mut s = SessionState::new(T, start);
        s.user_message(T, start);
        assert_eq!(s.phase(), Phase::Reactive);
        assert_eq!(
            s.can_deliver(start + Duration::from_secs(30)),
            Err(Blocked::State(Phase::Reactive))
        );
        // Each message resets the timer.
        s.user_message(T, start + Duration::from_secs(50));
        assert_eq!(
            s.can_deliver(start + Duration::from_secs(100)),
            Err(Blocked::State(Phase::Reactive))
        );
        let ended = start + Duration::from_secs(111);
        assert_eq!(s.can_deliver(ended), Err(Blocked::Cooldown));
    }

    #[test]
    fn a_user_message_clears_a_cooldown_and_replies_extend_a_proactive_interaction() {
        let start = Instant::now();
        let mut s = SessionState::new(T, start);
        s.to_proactive(T, start).unwrap();
        s.user_message(T, start + Duration::from_secs(50));
        assert_eq!(
            s.phase(),
            Phase::Proactive,
            "never proactive -> reactive directly"
        );
        assert_eq!(
            s.can_deliver(start + Duration::from_secs(100)),
            Err(Blocked::State(Phase::Proactive))
        );
        let cooling = start + Duration::from_secs(111);
        assert_eq!(s.can_deliver(cooling), Err(Blocked::Cooldown));
        s.user_message(T, cooling);
        assert_eq!(
            s.phase(),
            Phase::Reactive,
            "thinking -> reactive is not blocked by cooldown"
        );
    }

    #[test]
    fn a_triggers_own_timing_overrides_the_defaults() {
        let start = Instant::now();
        let mut s = SessionState::new(T, start);
        let short = Timing {
            interaction_timeout: Duration::from_secs(5),
            cooldown: Duration::from_secs(10),
        };
        s.to_proactive(short, start).unwrap();
        assert_eq!(
            s.can_deliver(start + Duration::from_secs(6)),
            Err(Blocked::Cooldown)
        );
        assert_eq!(s.can_deliver(start + Duration::from_secs(16)), Ok(()));
    }
}

//! A conversation's dialogue state, as Rasa's tracker keeps it: the recent
//! events (user intents, bot actions, slots set, loops), the slot values, the
//! active loop and the latest parse. Bounded: only the last events are kept,
//! enough for rules, stories and the action server's view.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value as Json, json};

use crate::nlu::{Classification, Entity};

/// Events kept per conversation.
const MAX_EVENTS: usize = 32;

/// The slot a form is asking for (Rasa's name).
pub const REQUESTED_SLOT: &str = "requested_slot";

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    User {
        text: String,
        intent: String,
        confidence: f32,
        entities: Vec<Entity>,
    },
    Action(String),
    Bot(String),
    Slot(String, Json),
    ActiveLoop(Option<String>),
}

/// The latest user message, borrowed from the tracker.
#[derive(Debug, Clone, Copy)]
pub struct Latest<'a> {
    pub text: &'a str,
    pub intent: &'a str,
    pub confidence: f32,
    pub entities: &'a [Entity],
}

/// A step of the history as rules and stories see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    User(String),
    Action(String),
}

#[derive(Debug, Clone, Default)]
pub struct Tracker {
    events: VecDeque<Event>,
    /// The user and action events as rules and stories see them, kept
    /// alongside `events` so a prediction copies nothing.
    items: Vec<Item>,
    slots: HashMap<String, Json>,
    active_loop: Option<String>,
    /// Slots given a value since the latest user message.
    set_this_turn: Vec<String>,
    /// The domain's initial slot values are in.
    initialised: bool,
}

impl Tracker {
    /// A fresh tracker with the domain's initial slot values.
    pub fn new(initial: impl IntoIterator<Item = (String, Json)>) -> Self {
        Self {
            slots: initial.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            initialised: true,
            ..Self::default()
        }
    }

    /// Sets the initial slot values on a tracker that started empty (the
    /// conversation memory does not know the domain).
    pub fn ensure_initial(&mut self, initial: impl FnOnce() -> Vec<(String, Json)>) {
        if !self.initialised {
            for (name, value) in initial() {
                if !value.is_null() {
                    self.slots.entry(name).or_insert(value);
                }
            }
            self.initialised = true;
        }
    }

    fn push(&mut self, event: Event) {
        match &event {
            Event::User { intent, .. } => self.items.push(Item::User(intent.clone())),
            Event::Action(name) => self.items.push(Item::Action(name.clone())),
            _ => {}
        }
        self.events.push_back(event);
        while self.events.len() > MAX_EVENTS {
            if let Some(Event::User { .. } | Event::Action(_)) = self.events.pop_front()
                && !self.items.is_empty()
            {
                self.items.remove(0);
            }
        }
    }

    pub fn user_uttered(&mut self, text: &str, classification: &Classification) {
        self.set_this_turn.clear();
        self.push(Event::User {
            text: text.to_owned(),
            intent: classification.intent.name.clone(),
            confidence: classification.intent.confidence,
            entities: classification.entities.clone(),
        });
    }

    pub fn action(&mut self, name: &str) {
        self.push(Event::Action(name.to_owned()));
    }

    pub fn bot(&mut self, text: &str) {
        self.push(Event::Bot(text.to_owned()));
    }

    pub fn set_slot(&mut self, name: &str, value: Json) {
        if value.is_null() {
            self.slots.remove(name);
        } else {
            self.set_this_turn.push(name.to_owned());
            self.slots.insert(name.to_owned(), value.clone());
        }
        self.push(Event::Slot(name.to_owned(), value));
    }

    pub fn set_active_loop(&mut self, name: Option<&str>) {
        self.active_loop = name.map(str::to_owned);
        self.push(Event::ActiveLoop(self.active_loop.clone()));
    }

    /// Forgets the latest user message (Rasa's `UserUtteranceReverted`), so a
    /// fallback does not become part of the story.
    pub fn revert_user_utterance(&mut self) {
        while let Some(event) = self.events.pop_back() {
            match event {
                Event::User { .. } => {
                    self.items.pop();
                    break;
                }
                Event::Action(_) => {
                    self.items.pop();
                }
                _ => {}
            }
        }
    }

    pub fn restart(&mut self, initial: impl IntoIterator<Item = (String, Json)>) {
        *self = Self::new(initial);
    }

    pub fn slot(&self, name: &str) -> Option<&Json> {
        self.slots.get(name)
    }

    pub fn slots(&self) -> &HashMap<String, Json> {
        &self.slots
    }

    pub fn was_set_this_turn(&self, name: &str) -> bool {
        self.set_this_turn.iter().any(|s| s == name)
    }

    pub fn active_loop(&self) -> Option<&str> {
        self.active_loop.as_deref()
    }

    pub fn requested_slot(&self) -> Option<&str> {
        self.slots.get(REQUESTED_SLOT).and_then(Json::as_str)
    }

    /// The latest user message still in the tracker.
    pub fn latest(&self) -> Option<Latest<'_>> {
        self.events.iter().rev().find_map(|e| match e {
            Event::User {
                text,
                intent,
                confidence,
                entities,
            } => Some(Latest {
                text,
                intent,
                confidence: *confidence,
                entities,
            }),
            _ => None,
        })
    }

    /// User intents and bot actions, oldest first.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Entities of the latest user message.
    pub fn latest_entities(&self) -> &[Entity] {
        self.latest().map_or(&[], |l| l.entities)
    }

    pub fn latest_action(&self) -> Option<&str> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Action(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Rasa's event JSON, for the action server.
    pub fn events_json(&self) -> Vec<Json> {
        self.events
            .iter()
            .map(|e| match e {
                Event::User {
                    text,
                    intent,
                    confidence,
                    entities,
                } => json!({
                    "event": "user",
                    "text": text,
                    "parse_data": {
                        "intent": {"name": intent, "confidence": confidence},
                        "entities": entities,
                        "text": text,
                    },
                }),
                Event::Action(name) => json!({"event": "action", "name": name}),
                Event::Bot(text) => json!({"event": "bot", "text": text}),
                Event::Slot(name, value) => json!({"event": "slot", "name": name, "value": value}),
                Event::ActiveLoop(name) => json!({"event": "active_loop", "name": name}),
            })
            .collect()
    }
}

/// A tracker as the journal keeps it: the events (from which the rule and
/// story view is rebuilt), slots and the active loop. Entities keep what
/// rules, slots and the action server read; the extractor name is not kept.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Saved {
    events: Vec<SavedEvent>,
    slots: HashMap<String, Json>,
    active_loop: Option<String>,
    initialised: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum SavedEvent {
    User {
        text: String,
        intent: String,
        confidence: f32,
        entities: Vec<SavedEntity>,
    },
    Action {
        name: String,
    },
    Bot {
        text: String,
    },
    Slot {
        name: String,
        value: Json,
    },
    ActiveLoop {
        name: Option<String>,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEntity {
    entity: String,
    start: Option<usize>,
    end: Option<usize>,
    value: Json,
    role: Option<String>,
    group: Option<String>,
}

impl Tracker {
    pub fn save(&self) -> Saved {
        let events = self
            .events
            .iter()
            .map(|event| match event {
                Event::User {
                    text,
                    intent,
                    confidence,
                    entities,
                } => SavedEvent::User {
                    text: text.clone(),
                    intent: intent.clone(),
                    confidence: *confidence,
                    entities: entities
                        .iter()
                        .map(|e| SavedEntity {
                            entity: e.entity.clone(),
                            start: e.start,
                            end: e.end,
                            value: e.value.clone(),
                            role: e.role.clone(),
                            group: e.group.clone(),
                        })
                        .collect(),
                },
                Event::Action(name) => SavedEvent::Action { name: name.clone() },
                Event::Bot(text) => SavedEvent::Bot { text: text.clone() },
                Event::Slot(name, value) => SavedEvent::Slot {
                    name: name.clone(),
                    value: value.clone(),
                },
                Event::ActiveLoop(name) => SavedEvent::ActiveLoop { name: name.clone() },
            })
            .collect();
        Saved {
            events,
            slots: self.slots.clone(),
            active_loop: self.active_loop.clone(),
            initialised: self.initialised,
        }
    }

    pub fn restore(saved: Saved) -> Self {
        let mut tracker = Self {
            slots: saved.slots,
            active_loop: saved.active_loop,
            initialised: saved.initialised,
            ..Self::default()
        };
        for event in saved.events {
            tracker.push(match event {
                SavedEvent::User {
                    text,
                    intent,
                    confidence,
                    entities,
                } => Event::User {
                    text,
                    intent,
                    confidence,
                    entities: entities
                        .into_iter()
                        .map(|e| Entity {
                            start: e.start,
                            end: e.end,
                            role: e.role,
                            group: e.group,
                            ..Entity::given(e.entity, e.value)
                        })
                        .collect(),
                },
                SavedEvent::Action { name } => Event::Action(name),
                SavedEvent::Bot { text } => Event::Bot(text),
                SavedEvent::Slot { name, value } => Event::Slot(name, value),
                SavedEvent::ActiveLoop { name } => Event::ActiveLoop(name),
            });
        }
        tracker
    }
}

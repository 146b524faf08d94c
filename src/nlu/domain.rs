//! The domain file's parts, typed: responses (with variations, buttons and
//! conditions), slots (with their mappings) and forms. Parsed from
//! `domain.yml` (or a `domain/` folder); what we do not support is warned about.

use std::collections::HashMap;

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

use super::yaml::{Sink, json, keys, name_of, scalar, seq, str_at};

#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub title: String,
    pub payload: String,
}

/// A response variation's `condition`: the slot must hold this value.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotCondition {
    pub slot: String,
    pub value: Json,
}

/// One variation of a `utter_*` response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseVariant {
    pub text: Option<String>,
    pub buttons: Vec<Button>,
    pub image: Option<String>,
    pub custom: Option<Json>,
    pub attachment: Option<Json>,
    /// Passed to the client with the text (`domHighlight` and the like).
    pub metadata: Option<Json>,
    /// Every condition must hold for this variation to be chosen.
    pub condition: Vec<SlotCondition>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SlotKind {
    Text,
    Bool,
    Float,
    List,
    Any,
    Categorical(Vec<String>),
}

/// When a mapping applies: the active loop and the slot the form asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingCondition {
    pub active_loop: Option<String>,
    pub requested_slot: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MappingSource {
    FromEntity {
        entity: String,
        role: Option<String>,
        group: Option<String>,
    },
    FromText,
    FromIntent {
        value: Json,
    },
    FromTriggerIntent {
        value: Json,
    },
    /// Set by a custom action, never extracted.
    Custom,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlotMapping {
    pub source: MappingSource,
    /// Only for these intents (empty: any).
    pub intent: Vec<String>,
    pub not_intent: Vec<String>,
    /// Any one must hold (empty: always).
    pub conditions: Vec<MappingCondition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlotDef {
    pub name: String,
    pub kind: SlotKind,
    pub initial_value: Json,
    pub mappings: Vec<SlotMapping>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormDef {
    pub name: String,
    pub required_slots: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Domain {
    pub intents: Vec<String>,
    pub entities: Vec<String>,
    pub responses: HashMap<String, Vec<ResponseVariant>>,
    pub slots: Vec<SlotDef>,
    pub forms: Vec<FormDef>,
    pub actions: Vec<String>,
}

impl Domain {
    /// Adds one domain file's keys (already told apart from training data).
    pub fn add(&mut self, key: &str, value: Value, sink: &mut Sink<'_>) {
        match key {
            "intents" => {
                for intent in seq(value) {
                    match name_of(&intent) {
                        Some(name) => push_unique(&mut self.intents, name),
                        None => sink.warn("an intent entry has no name; skipped"),
                    }
                }
            }
            "entities" => {
                for entity in seq(value) {
                    if let Some(name) = name_of(&entity) {
                        push_unique(&mut self.entities, name);
                    }
                }
            }
            "responses" => self.add_responses(value, sink),
            "actions" => {
                for action in seq(value) {
                    if let Some(name) = name_of(&action) {
                        push_unique(&mut self.actions, name);
                    }
                }
            }
            "slots" => self.add_slots(value, sink),
            "forms" => self.add_forms(value, sink),
            "session_config" => sink.warn(
                "`session_config` ignored: conversations expire after [chat] conversation_idle_seconds",
            ),
            "config" => {}
            other => sink.warn(format!("unknown key `{other}` ignored")),
        }
    }

    fn add_responses(&mut self, value: Value, sink: &mut Sink<'_>) {
        let Value::Mapping(map) = value else {
            sink.warn("`responses` is not a mapping; skipped");
            return;
        };
        for (name, variants) in map {
            let Some(name) = name.as_str() else { continue };
            let mut parsed = Vec::new();
            for variant in seq(variants) {
                match variant {
                    Value::Mapping(variant) => parsed.push(response_variant(name, &variant, sink)),
                    Value::String(text) => parsed.push(ResponseVariant {
                        text: Some(text),
                        ..Default::default()
                    }),
                    _ => sink.warn(format!(
                        "response `{name}` has a variant that is not a mapping"
                    )),
                }
            }
            self.responses.insert(name.to_owned(), parsed);
        }
    }

    fn add_slots(&mut self, value: Value, sink: &mut Sink<'_>) {
        let Value::Mapping(map) = value else {
            sink.warn("`slots` is not a mapping; skipped");
            return;
        };
        for (name, def) in map {
            let Some(name) = name.as_str() else { continue };
            let def = def.as_mapping().cloned().unwrap_or_default();
            let kind = match str_at(&def, "type").as_deref() {
                Some("text") | None => SlotKind::Text,
                Some("bool") => SlotKind::Bool,
                Some("float") => SlotKind::Float,
                Some("list") => SlotKind::List,
                Some("any") => SlotKind::Any,
                Some("categorical") => SlotKind::Categorical(
                    def.get("values")
                        .cloned()
                        .map(seq)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(scalar)
                        .collect(),
                ),
                Some(other) => {
                    sink.warn(format!("slot `{name}`: type `{other}` read as `any`"));
                    SlotKind::Any
                }
            };
            let mut mappings = Vec::new();
            for mapping in def.get("mappings").cloned().map(seq).unwrap_or_default() {
                let Value::Mapping(mapping) = mapping else {
                    continue;
                };
                if let Some(m) = slot_mapping(name, &mapping, sink) {
                    mappings.push(m);
                }
            }
            self.slots.push(SlotDef {
                name: name.to_owned(),
                kind,
                initial_value: def.get("initial_value").map(json).unwrap_or(Json::Null),
                mappings,
            });
        }
    }

    fn add_forms(&mut self, value: Value, sink: &mut Sink<'_>) {
        let Value::Mapping(map) = value else {
            sink.warn("`forms` is not a mapping; skipped");
            return;
        };
        for (name, def) in map {
            let Some(name) = name.as_str() else { continue };
            let def = def.as_mapping().cloned().unwrap_or_default();
            let required_slots = match def.get("required_slots") {
                Some(Value::Sequence(slots)) => slots.iter().filter_map(name_of).collect(),
                Some(Value::Mapping(old)) => {
                    sink.warn(format!(
                        "form `{name}`: slot mappings under `required_slots` are Rasa 2 style; \
                         only the slot names are used"
                    ));
                    old.keys()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                }
                _ => Vec::new(),
            };
            for key in keys(&def) {
                if !matches!(key, "required_slots" | "ignored_intents") {
                    sink.warn(format!("form `{name}`: `{key}` ignored"));
                }
            }
            self.forms.push(FormDef {
                name: name.to_owned(),
                required_slots,
            });
        }
    }
}

fn push_unique(list: &mut Vec<String>, name: String) {
    if !list.contains(&name) {
        list.push(name);
    }
}

fn response_variant(name: &str, variant: &Mapping, sink: &mut Sink<'_>) -> ResponseVariant {
    let mut out = ResponseVariant::default();
    for (key, value) in variant {
        match key.as_str().unwrap_or_default() {
            "text" => out.text = scalar(value),
            "buttons" | "quick_replies" => out
                .buttons
                .extend(seq(value.clone()).iter().filter_map(button_of)),
            "image" => out.image = value.as_str().map(str::to_owned),
            "custom" => out.custom = Some(json(value)),
            "attachment" => out.attachment = Some(json(value)),
            "condition" => {
                for condition in seq(value.clone()) {
                    let Some(c) = condition.as_mapping() else {
                        continue;
                    };
                    match (str_at(c, "type").as_deref(), str_at(c, "name")) {
                        (Some("slot") | None, Some(slot)) => out.condition.push(SlotCondition {
                            slot,
                            value: c.get("value").map(json).unwrap_or(Json::Null),
                        }),
                        _ => sink.warn(format!(
                            "response `{name}`: a condition that is not `type: slot` ignored"
                        )),
                    }
                }
            }
            "metadata" => out.metadata = Some(json(value)).filter(Json::is_object),
            "id" | "channel" => {}
            other => sink.warn(format!("response `{name}`: key `{other}` ignored")),
        }
    }
    out
}

fn button_of(value: &Value) -> Option<Button> {
    let map = value.as_mapping()?;
    let title = str_at(map, "title")?;
    let payload = str_at(map, "payload")
        .or_else(|| str_at(map, "url"))
        .unwrap_or_else(|| title.clone());
    Some(Button { title, payload })
}

fn names(map: &Mapping, key: &str) -> Vec<String> {
    map.get(key)
        .cloned()
        .map(seq)
        .unwrap_or_default()
        .iter()
        .filter_map(scalar)
        .collect()
}

fn slot_mapping(slot: &str, mapping: &Mapping, sink: &mut Sink<'_>) -> Option<SlotMapping> {
    let value = || mapping.get("value").map(json).unwrap_or(Json::Null);
    let source = match str_at(mapping, "type").as_deref() {
        Some("from_entity") => MappingSource::FromEntity {
            entity: str_at(mapping, "entity")?,
            role: str_at(mapping, "role"),
            group: str_at(mapping, "group"),
        },
        Some("from_text") => MappingSource::FromText,
        Some("from_intent") => MappingSource::FromIntent { value: value() },
        Some("from_trigger_intent") => MappingSource::FromTriggerIntent { value: value() },
        Some("custom") => MappingSource::Custom,
        other => {
            sink.warn(format!(
                "slot `{slot}`: mapping type `{}` is not supported; mapping skipped",
                other.unwrap_or("(none)")
            ));
            return None;
        }
    };
    let conditions = mapping
        .get("conditions")
        .cloned()
        .map(seq)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_mapping)
        .map(|c| MappingCondition {
            active_loop: str_at(c, "active_loop"),
            requested_slot: str_at(c, "requested_slot"),
        })
        .collect();
    Some(SlotMapping {
        source,
        intent: names(mapping, "intent"),
        not_intent: names(mapping, "not_intent"),
        conditions,
    })
}

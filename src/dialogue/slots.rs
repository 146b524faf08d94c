//! Filling slots from a user message by their domain mappings, as Rasa 3's
//! `action_extract_slots` does after every message: `from_entity`,
//! `from_text`, `from_intent`, each with its `intent`/`not_intent` filter and
//! its `conditions` on the active loop and the requested slot.

use serde_json::Value as Json;

use super::tracker::Tracker;
use crate::nlu::domain::{MappingSource, SlotDef, SlotKind, SlotMapping};

/// Sets every slot a mapping fills from the latest message.
pub fn extract(slots: &[SlotDef], tracker: &mut Tracker) {
    if slots.is_empty() {
        return;
    }
    let Some(latest) = tracker.latest() else {
        return;
    };
    let intent = latest.intent.to_owned();
    let text = latest.text.to_owned();
    let mut updates = Vec::new();
    for slot in slots {
        for mapping in &slot.mappings {
            if !applies(mapping, &intent, tracker) {
                continue;
            }
            let value = match &mapping.source {
                MappingSource::FromEntity {
                    entity,
                    role,
                    group,
                } => tracker
                    .latest_entities()
                    .iter()
                    .find(|e| {
                        e.entity == *entity
                            && (role.is_none() || e.role == *role)
                            && (group.is_none() || e.group == *group)
                    })
                    .map(|e| e.value.clone()),
                MappingSource::FromText => Some(Json::String(text.clone())),
                MappingSource::FromIntent { value } if !mapping.intent.is_empty() => {
                    Some(value.clone())
                }
                MappingSource::FromIntent { .. }
                | MappingSource::FromTriggerIntent { .. }
                | MappingSource::Custom => None,
            };
            if let Some(value) = value {
                updates.push((slot.name.clone(), coerce(&slot.kind, value)));
                break;
            }
        }
    }
    for (name, value) in updates {
        tracker.set_slot(&name, value);
    }
}

fn applies(mapping: &SlotMapping, intent: &str, tracker: &Tracker) -> bool {
    if !mapping.intent.is_empty() && !mapping.intent.iter().any(|i| i == intent) {
        return false;
    }
    if mapping.not_intent.iter().any(|i| i == intent) {
        return false;
    }
    mapping.conditions.is_empty()
        || mapping.conditions.iter().any(|c| {
            c.active_loop
                .as_deref()
                .is_none_or(|l| tracker.active_loop() == Some(l))
                && c.requested_slot
                    .as_deref()
                    .is_none_or(|r| tracker.requested_slot() == Some(r))
        })
}

/// Values as the slot's type holds them: `"5"` in a float slot is 5.0.
fn coerce(kind: &SlotKind, value: Json) -> Json {
    match (kind, &value) {
        (SlotKind::Float, Json::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(value, Json::Number),
        (SlotKind::Bool, Json::String(s)) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" => Json::Bool(true),
            "false" | "no" | "0" => Json::Bool(false),
            _ => value,
        },
        (SlotKind::List, v) if !v.is_array() => Json::Array(vec![value]),
        _ => value,
    }
}

//! What the bot says, as channel-neutral messages, and the rendering of
//! `utter_*` responses from the domain: a random variation among those whose
//! `condition` holds (conditional ones first, as Rasa), `{slot}`s filled, and
//! `{name}` the user's first name unless a slot of that name is set.

use std::collections::HashMap;

use rand::seq::IndexedRandom;
use serde_json::Value as Json;

pub use crate::nlu::{Button, ResponseVariant};

/// One bot message. Channels turn these into their wire payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum BotMessage {
    /// `metadata` (a response's `metadata:`) goes to the client with the
    /// text: rasa-webchat reads `domHighlight`, `forceOpen` and more from it.
    Text {
        text: String,
        buttons: Vec<Button>,
        metadata: Option<Json>,
    },
    Image {
        url: String,
    },
    Attachment(Json),
    Custom(Json),
}

impl BotMessage {
    pub fn text(text: impl Into<String>) -> Self {
        BotMessage::Text {
            text: text.into(),
            buttons: Vec::new(),
            metadata: None,
        }
    }

    /// The text a person reads, for history and `/reply`.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            BotMessage::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// What fills a response's placeholders.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill<'a> {
    pub first_name: Option<&'a str>,
    pub slots: Option<&'a HashMap<String, Json>>,
}

fn slot_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders one randomly chosen variation. `{name}` becomes the first name; with
/// no name known, " {name}" disappears ("Hi {name}!" → "Hi!"). `{slot}` is the
/// slot's value; an unset slot reads as Rasa's "None".
pub fn render(variants: &[ResponseVariant], fill: Fill<'_>) -> Vec<BotMessage> {
    let empty = HashMap::new();
    let slots = fill.slots.unwrap_or(&empty);
    let holds = |v: &&ResponseVariant| {
        v.condition
            .iter()
            .all(|c| slots.get(&c.slot).unwrap_or(&Json::Null) == &c.value)
    };
    let conditional: Vec<&ResponseVariant> = variants
        .iter()
        .filter(|v| !v.condition.is_empty())
        .filter(holds)
        .collect();
    let pool: Vec<&ResponseVariant> = if conditional.is_empty() {
        variants.iter().filter(|v| v.condition.is_empty()).collect()
    } else {
        conditional
    };
    let Some(variant) = pool.choose(&mut rand::rng()) else {
        return Vec::new();
    };
    let fill = |text: &str| {
        let mut out = text.to_owned();
        if out.contains('{') {
            for (slot, value) in slots {
                out = out.replace(&format!("{{{slot}}}"), &slot_text(value));
            }
        }
        match fill.first_name {
            Some(name) => out.replace("{name}", name),
            None => out.replace(" {name}", "").replace("{name}", "there"),
        }
    };
    let mut messages = Vec::new();
    if variant.text.is_some() || !variant.buttons.is_empty() {
        messages.push(BotMessage::Text {
            text: fill(variant.text.as_deref().unwrap_or_default()),
            buttons: variant.buttons.clone(),
            metadata: variant.metadata.clone(),
        });
    }
    if let Some(url) = &variant.image {
        messages.push(BotMessage::Image { url: url.clone() });
    }
    if let Some(attachment) = &variant.attachment {
        messages.push(BotMessage::Attachment(attachment.clone()));
    }
    if let Some(custom) = &variant.custom {
        messages.push(BotMessage::Custom(custom.clone()));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_filled_or_removed_gracefully() {
        let variants = [ResponseVariant {
            text: Some("Hi {name}! Ready?".into()),
            ..Default::default()
        }];
        assert_eq!(
            render(
                &variants,
                Fill {
                    first_name: Some("Casey"),
                    slots: None
                }
            ),
            [BotMessage::text("Hi Casey! Ready?")]
        );
        assert_eq!(
            render(&variants, Fill::default()),
            [BotMessage::text("Hi! Ready?")]
        );
    }

    #[test]
    fn every_variation_is_used_eventually() {
        let variants: Vec<ResponseVariant> = ["a", "b", "c"]
            .iter()
            .map(|t| ResponseVariant {
                text: Some((*t).into()),
                ..Default::default()
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(
                render(&variants, Fill::default())[0]
                    .as_text()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn slots_fill_and_conditions_choose_the_variation() {
        let variants = [
            ResponseVariant {
                text: Some("Thanks {feedback_name}!".into()),
                ..Default::default()
            },
            ResponseVariant {
                text: Some("Welcome back, {feedback_name}.".into()),
                condition: vec![crate::nlu::domain::SlotCondition {
                    slot: "returning".into(),
                    value: Json::Bool(true),
                }],
                ..Default::default()
            },
        ];
        let mut slots = HashMap::new();
        slots.insert("feedback_name".to_owned(), Json::from("Ada"));
        let fill = Fill {
            first_name: None,
            slots: Some(&slots),
        };
        assert_eq!(render(&variants, fill), [BotMessage::text("Thanks Ada!")]);
        slots.insert("returning".to_owned(), Json::Bool(true));
        let fill = Fill {
            first_name: None,
            slots: Some(&slots),
        };
        assert_eq!(
            render(&variants, fill),
            [BotMessage::text("Welcome back, Ada.")]
        );
    }
}

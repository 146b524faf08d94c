//! What the bot says, as channel-neutral messages, and the rendering of
//! `utter_*` responses from the domain (a random variation, `{name}` filled).

use rand::seq::IndexedRandom;
use serde_json::Value as Json;

use crate::rasa::{Button, ResponseVariant};

/// One bot message. Channels turn these into their wire payloads.
#[derive(Debug, Clone, PartialEq)]
pub enum BotMessage {
    Text { text: String, buttons: Vec<Button> },
    Image { url: String },
    Attachment(Json),
    Custom(Json),
}

impl BotMessage {
    pub fn text(text: impl Into<String>) -> Self {
        BotMessage::Text {
            text: text.into(),
            buttons: Vec::new(),
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

/// Renders one randomly chosen variation. `{name}` becomes the first name; with
/// no name known, " {name}" disappears ("Hi {name}!" → "Hi!").
pub fn render(variants: &[ResponseVariant], first_name: Option<&str>) -> Vec<BotMessage> {
    let Some(variant) = variants.choose(&mut rand::rng()) else {
        return Vec::new();
    };
    let fill = |text: &str| match first_name {
        Some(name) => text.replace("{name}", name),
        None => text.replace(" {name}", "").replace("{name}", "there"),
    };
    let mut messages = Vec::new();
    if variant.text.is_some() || !variant.buttons.is_empty() {
        messages.push(BotMessage::Text {
            text: fill(variant.text.as_deref().unwrap_or_default()),
            buttons: variant.buttons.clone(),
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
            render(&variants, Some("Casey")),
            [BotMessage::text("Hi Casey! Ready?")]
        );
        assert_eq!(render(&variants, None), [BotMessage::text("Hi! Ready?")]);
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
            seen.insert(render(&variants, None)[0].as_text().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 3);
    }
}

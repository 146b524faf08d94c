//! Bot messages in Rasa's wire shapes: what the `socketio` channel emits as
//! `bot_uttered` (shapes rasa-webchat renders) and what the REST channel returns.

use serde_json::{Value, json};

use crate::dialogue::BotMessage;

/// Socket payloads, following Rasa's `SocketIOOutput`: text split on blank
/// lines; with buttons every part gets `quick_replies` and the last one carries
/// them; images and attachments as `attachment`; custom JSON's `data` emitted as is.
pub fn socket_payloads(messages: &[BotMessage]) -> Vec<Value> {
    let mut out = Vec::new();
    for message in messages {
        match message {
            BotMessage::Text { text, buttons } if buttons.is_empty() => {
                out.extend(parts(text).map(|part| json!({ "text": part })));
            }
            BotMessage::Text { text, buttons } => {
                let mut items: Vec<Value> = parts(text)
                    .map(|part| json!({ "text": part, "quick_replies": [] }))
                    .collect();
                if items.is_empty() {
                    items.push(json!({ "text": "", "quick_replies": [] }));
                }
                let replies: Vec<Value> = buttons
                    .iter()
                    .map(|b| json!({ "content_type": "text", "title": b.title, "payload": b.payload }))
                    .collect();
                if let Some(last) = items.last_mut() {
                    last["quick_replies"] = Value::Array(replies);
                }
                out.extend(items);
            }
            BotMessage::Image { url } => {
                out.push(json!({ "attachment": { "type": "image", "payload": { "src": url } } }));
            }
            BotMessage::Attachment(attachment) => out.push(json!({ "attachment": attachment })),
            BotMessage::Custom(custom) => out.push(
                custom
                    .get("data")
                    .cloned()
                    .unwrap_or_else(|| custom.clone()),
            ),
        }
    }
    out
}

/// REST items, following Rasa's `CollectingOutputChannel`: `{recipient_id, …}`.
pub fn rest_items(recipient: &str, messages: &[BotMessage]) -> Vec<Value> {
    let mut out = Vec::new();
    for message in messages {
        match message {
            BotMessage::Text { text, buttons } if buttons.is_empty() => {
                out.extend(
                    parts(text).map(|part| json!({ "recipient_id": recipient, "text": part })),
                );
            }
            BotMessage::Text { text, buttons } => {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|b| json!({ "title": b.title, "payload": b.payload }))
                    .collect();
                out.push(json!({ "recipient_id": recipient, "text": text, "buttons": buttons }));
            }
            BotMessage::Image { url } => {
                out.push(json!({ "recipient_id": recipient, "image": url }))
            }
            BotMessage::Attachment(a) => {
                out.push(json!({ "recipient_id": recipient, "attachment": a }))
            }
            BotMessage::Custom(c) => out.push(json!({ "recipient_id": recipient, "custom": c })),
        }
    }
    out
}

fn parts(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n").map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::Button;

    #[test]
    fn socket_payloads_match_what_rasa_webchat_renders() {
        let messages = [
            BotMessage::text("One.\n\nTwo."),
            BotMessage::Text {
                text: "Pick\n\none".into(),
                buttons: vec![Button {
                    title: "Yes".into(),
                    payload: "/affirm".into(),
                }],
            },
            BotMessage::Image {
                url: "https://x.io/a.png".into(),
            },
            BotMessage::Custom(json!({"data": {"type": "carousel"}})),
        ];
        assert_eq!(
            socket_payloads(&messages),
            vec![
                json!({"text": "One."}),
                json!({"text": "Two."}),
                json!({"text": "Pick", "quick_replies": []}),
                json!({"text": "one", "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "/affirm"}]}),
                json!({"attachment": {"type": "image", "payload": {"src": "https://x.io/a.png"}}}),
                json!({"type": "carousel"}),
            ]
        );
    }

    #[test]
    fn rest_items_carry_the_recipient() {
        let items = rest_items(
            "u1",
            &[
                BotMessage::text("a\n\nb"),
                BotMessage::Image { url: "i".into() },
            ],
        );
        assert_eq!(
            items,
            vec![
                json!({"recipient_id": "u1", "text": "a"}),
                json!({"recipient_id": "u1", "text": "b"}),
                json!({"recipient_id": "u1", "image": "i"}),
            ]
        );
    }
}

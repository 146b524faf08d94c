//! Bot messages in Rasa's wire shapes: what the `socketio` channel emits as
//! `bot_uttered` (shapes rasa-webchat renders) and what the REST channel returns.

use serde_json::{Value, json};

use crate::dialogue::BotMessage;
use crate::dialogue::live::Progress;

/// Socket payloads, following Rasa's `SocketIOOutput`: text split on blank
/// lines; with buttons every part gets `quick_replies` and the last one carries
/// them; images and attachments as `attachment`; custom JSON's `data` emitted as is.
/// A response's `metadata` rides on its last part (Rasa 3.6 drops it; widgets
/// such as rasa-webchat act on it).
pub fn socket_payloads(messages: &[BotMessage]) -> Vec<Value> {
    socket_payloads_drafted(messages, None)
}

/// Sets `metadata.{key}` on a payload, keeping metadata it already has.
pub fn set_metadata(payload: &mut Value, key: &str, value: Value) {
    if !payload["metadata"].is_object() {
        payload["metadata"] = Value::Object(Default::default());
    }
    payload["metadata"][key] = value;
}

/// [`socket_payloads`], where the `drafted` message (index, message id) of a
/// live turn goes out whole, in one payload whose `metadata.message_id` names
/// the draft it replaces.
pub fn socket_payloads_drafted(
    messages: &[BotMessage],
    drafted: Option<(usize, &str)>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let before = out.len();
        match (message, drafted) {
            (BotMessage::Text { text, buttons, .. }, Some((d, id))) if d == i => {
                let mut payload = json!({ "text": text, "metadata": { "message_id": id } });
                if !buttons.is_empty() {
                    payload["quick_replies"] = quick_replies(buttons);
                }
                out.push(payload);
            }
            (BotMessage::Text { text, buttons, .. }, _) if buttons.is_empty() => {
                out.extend(parts(text).map(|part| json!({ "text": part })));
            }
            (BotMessage::Text { text, buttons, .. }, _) => {
                let mut items: Vec<Value> = parts(text)
                    .map(|part| json!({ "text": part, "quick_replies": [] }))
                    .collect();
                if items.is_empty() {
                    items.push(json!({ "text": "", "quick_replies": [] }));
                }
                if let Some(last) = items.last_mut() {
                    last["quick_replies"] = quick_replies(buttons);
                }
                out.extend(items);
            }
            (BotMessage::Image { url }, _) => {
                out.push(json!({ "attachment": { "type": "image", "payload": { "src": url } } }));
            }
            (BotMessage::Attachment(attachment), _) => {
                out.push(json!({ "attachment": attachment }))
            }
            (BotMessage::Custom(custom), _) => out.push(
                custom
                    .get("data")
                    .cloned()
                    .unwrap_or_else(|| custom.clone()),
            ),
        }
        if let BotMessage::Text {
            metadata: Some(Value::Object(extra)),
            ..
        } = message
            && let Some(last) = out.get_mut(before..).and_then(<[Value]>::last_mut)
        {
            let metadata = last["metadata"].as_object_mut();
            match metadata {
                Some(metadata) => metadata.extend(extra.clone()),
                None => last["metadata"] = Value::Object(extra.clone()),
            }
        }
    }
    out
}

fn quick_replies(buttons: &[crate::nlu::Button]) -> Value {
    buttons
        .iter()
        .map(|b| json!({ "content_type": "text", "title": b.title, "payload": b.payload }))
        .collect()
}

/// A live turn's step as our widget reads it (`bot_stream`, and the SSE
/// `bot_stream` event): `{message_id, status, text}`.
pub fn progress_frame(progress: &Progress) -> Value {
    json!({
        "message_id": progress.message_id,
        "status": progress.status.as_str(),
        "text": progress.text,
    })
}

/// REST items, following Rasa's `CollectingOutputChannel`: `{recipient_id, …}`.
pub fn rest_items(recipient: &str, messages: &[BotMessage]) -> Vec<Value> {
    rest_items_drafted(recipient, messages, None)
}

/// [`rest_items`], where the `drafted` message (index, message id) of a live
/// turn is one item whose `metadata.message_id` names its draft.
pub fn rest_items_drafted(
    recipient: &str,
    messages: &[BotMessage],
    drafted: Option<(usize, &str)>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        if let (BotMessage::Text { text, .. }, Some((d, id))) = (message, drafted)
            && d == i
        {
            out.push(json!({ "recipient_id": recipient, "text": text, "metadata": { "message_id": id } }));
            continue;
        }
        match message {
            BotMessage::Text { text, buttons, .. } if buttons.is_empty() => {
                out.extend(
                    parts(text).map(|part| json!({ "recipient_id": recipient, "text": part })),
                );
            }
            BotMessage::Text { text, buttons, .. } => {
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
                metadata: Some(json!({"domHighlight": {"selector": "#b"}})),
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
                json!({"text": "one", "quick_replies": [{"content_type": "text", "title": "Yes", "payload": "/affirm"}], "metadata": {"domHighlight": {"selector": "#b"}}}),
                json!({"attachment": {"type": "image", "payload": {"src": "https://x.io/a.png"}}}),
                json!({"type": "carousel"}),
            ]
        );
    }

    #[test]
    fn a_drafted_message_goes_out_whole_and_names_its_draft() {
        let messages = [
            BotMessage::text("Canned.\n\nTwo parts."),
            BotMessage::text("Streamed.\n\nSource: [A](https://a.io)"),
        ];
        assert_eq!(
            socket_payloads_drafted(&messages, Some((1, "m1"))),
            vec![
                json!({"text": "Canned."}),
                json!({"text": "Two parts."}),
                json!({"text": "Streamed.\n\nSource: [A](https://a.io)", "metadata": {"message_id": "m1"}}),
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

//! The wire shapes autoplay-sdk 0.13.0 parses (`ActionsPayload`, `SlimAction`,
//! `SummaryPayload`), built from our actions. Field names and types are the
//! SDK's; timestamps are Unix seconds as floats.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Action, ProductId, SessionId};

#[derive(Debug, Serialize)]
struct SlimAction<'a> {
    index: usize,
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    description: String,
    canonical_url: &'a str,
    raw_url: &'a str,
    timestamp_start: f64,
    timestamp_end: f64,
    session_id: &'a str,
    user_id: &'a str,
    email: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct ActionsPayload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    product_id: &'a str,
    session_id: &'a str,
    user_id: &'a str,
    email: Option<&'a str>,
    count: usize,
    forwarded_at: f64,
    actions: Vec<SlimAction<'a>>,
}

#[derive(Debug, Serialize)]
struct SummaryPayload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    product_id: &'a str,
    session_id: &'a str,
    summary: &'a str,
    replaces: usize,
    forwarded_at: f64,
}

fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64 / 1e6
}

/// One `actions` payload per session in the batch, in the order sessions first
/// appear; actions keep delivery order and are indexed from 0 within their
/// payload, as the connector does.
pub fn actions_payloads<'a>(
    product: &ProductId,
    actions: impl IntoIterator<Item = &'a Action>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut order: Vec<&SessionId> = Vec::new();
    let mut by_session: HashMap<&SessionId, Vec<&Action>> = HashMap::new();
    for action in actions {
        by_session
            .entry(&action.session_id)
            .or_insert_with(|| {
                order.push(&action.session_id);
                Vec::new()
            })
            .push(action);
    }
    order
        .into_iter()
        .filter_map(|session| {
            let actions = by_session.remove(session)?;
            let first = actions.first()?;
            let email = actions.iter().find_map(|a| a.email.as_deref());
            let payload = ActionsPayload {
                kind: "actions",
                product_id: product.as_str(),
                session_id: session.as_str(),
                user_id: first.user_id.as_str(),
                email,
                count: actions.len(),
                forwarded_at: unix_seconds(now),
                actions: actions
                    .iter()
                    .enumerate()
                    .map(|(index, a)| SlimAction {
                        index,
                        kind: a.kind.as_str(),
                        title: &a.title,
                        description: a.description(),
                        canonical_url: &a.canonical_url,
                        raw_url: &a.raw_url,
                        timestamp_start: unix_seconds(a.timestamp),
                        timestamp_end: unix_seconds(a.timestamp),
                        session_id: a.session_id.as_str(),
                        user_id: a.user_id.as_str(),
                        email: a.email.as_deref(),
                    })
                    .collect(),
            };
            serde_json::to_string(&payload).ok()
        })
        .collect()
}

/// The `summary` payload for a summary that was just stored and replaced
/// `replaces` raw actions.
pub fn summary_payload(
    product: &ProductId,
    session: &SessionId,
    summary: &str,
    replaces: usize,
    now: DateTime<Utc>,
) -> String {
    let payload = SummaryPayload {
        kind: "summary",
        product_id: product.as_str(),
        session_id: session.as_str(),
        summary,
        replaces,
        forwarded_at: unix_seconds(now),
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_string(&payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActionKind, UserId};

    fn action(session: &str, title: &str) -> Action {
        Action {
            kind: ActionKind::Click,
            title: title.into(),
            phrase: format!("clicked '{title}' button on /projects/:id"),
            label: Some(title.into()),
            page: "/projects/:id".into(),
            canonical_url: "https://app.example.com/projects/:id".into(),
            raw_url: "https://app.example.com/projects/42?tab=1".into(),
            timestamp: DateTime::from_timestamp(1_700_000_005, 200_000_000).unwrap(),
            session_id: SessionId::parse(session).unwrap(),
            user_id: UserId::parse("u1").unwrap(),
            email: Some("a@b.c".into()),
        }
    }

    #[test]
    fn a_batch_becomes_one_payload_per_session_in_the_sdk_shape() {
        let product = ProductId::parse("acme").unwrap();
        let batch = [
            action("s1", "Save"),
            action("s2", "Open"),
            action("s1", "Close"),
        ];
        let now = DateTime::from_timestamp(1_700_000_006, 0).unwrap();
        let payloads: Vec<serde_json::Value> = actions_payloads(&product, &batch, now)
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect();
        assert_eq!(payloads.len(), 2);
        let first = &payloads[0];
        assert_eq!(first["type"], "actions");
        assert_eq!(first["session_id"], "s1");
        assert_eq!(first["count"], 2);
        assert_eq!(first["forwarded_at"], 1_700_000_006.0);
        assert_eq!(first["actions"][1]["index"], 1);
        assert_eq!(first["actions"][1]["title"], "Close");
        assert_eq!(
            first["actions"][0]["description"],
            "Clicked 'Save' button on /projects/:id"
        );
        assert_eq!(first["actions"][0]["timestamp_start"], 1_700_000_005.2);
        assert_eq!(first["actions"][0]["type"], "click");
        assert_eq!(payloads[1]["session_id"], "s2");
    }
}

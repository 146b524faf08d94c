//! Wire shapes of PostHog deliveries and their conversion into [`Event`]s.
//!
//! Accepted bodies: the stock webhook `{"event":{…},"person":{…}}`, the flat body
//! of Autoplay's Hog destination, `{"batch":[…]}` and a bare array. Items of a
//! batch or array may be any of the single shapes.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Error;
use super::elements_chain::{self, Element};
use crate::domain::{SessionId, UserId};

/// A delivered event, normalised across the body shapes.
#[derive(Debug, Clone)]
pub struct Event {
    pub uuid: Option<String>,
    /// `$autocapture`, `$pageview`, or a custom name.
    pub name: String,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub timestamp: Option<DateTime<Utc>>,
    pub current_url: String,
    /// DOM event type of an autocapture: `click`, `change`, `submit`.
    pub event_type: Option<String>,
    /// `$el_text`, or the flat body's `button_or_link_text`.
    pub el_text: Option<String>,
    /// Parsed `elements_chain`, target first.
    pub elements: Vec<Element>,
    pub email: Option<String>,
    /// `title` of a `$pageview` (the document title).
    pub page_title: Option<String>,
    /// Stable id for de-duplicating retried deliveries: the event `uuid`, or a
    /// digest of the fields when the shape carries none.
    pub dedupe_key: String,
}

/// Parses a webhook body into events. Malformed JSON and wrong shapes are errors
/// that name the failing place; nothing here panics.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, Error> {
    let value: Value = serde_json::from_slice(body).map_err(Error::MalformedJson)?;
    match value {
        Value::Array(items) => parse_items(items, "body"),
        Value::Object(mut map) => match map.remove("batch") {
            Some(Value::Array(items)) => parse_items(items, "batch"),
            Some(_) => Err(Error::shape("batch", "must be an array of events")),
            None => Ok(vec![parse_item(Value::Object(map), "body")?]),
        },
        _ => Err(Error::shape(
            "body",
            "must be a JSON object (an event, or {\"batch\": [...]}) or an array of events",
        )),
    }
}

/// Parses already-decoded events (capture batches), named `batch[i]` in errors.
pub fn parse_events(items: Vec<Value>) -> Result<Vec<Event>, Error> {
    parse_items(items, "batch")
}

fn parse_items(items: Vec<Value>, at: &str) -> Result<Vec<Event>, Error> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_item(item, &format!("{at}[{i}]")))
        .collect()
}

fn parse_item(item: Value, at: &str) -> Result<Event, Error> {
    if !item.is_object() {
        return Err(Error::shape(at, "each event must be a JSON object"));
    }
    let stock = item.get("event").is_some_and(Value::is_object);
    if stock {
        let body: StockBody = typed(item, at)?;
        let person_props = body.person.and_then(|p| p.properties);
        body.event
            .into_event(person_props.as_ref(), &format!("{at}.event"))
    } else {
        let event: WireEvent = typed(item, at)?;
        event.into_event(None, at)
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: Value, at: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let path = if inner == "." {
            at.to_owned()
        } else {
            format!("{at}.{inner}")
        };
        Error::shape(path, err.into_inner().to_string())
    })
}

/// Stock PostHog webhook destination body.
#[derive(Deserialize)]
struct StockBody {
    event: WireEvent,
    #[serde(default)]
    person: Option<WirePerson>,
}

#[derive(Deserialize)]
struct WirePerson {
    #[serde(default)]
    properties: Option<Map<String, Value>>,
}

/// A PostHog event, or the flat body of Autoplay's destination (whose extra
/// fields are strings, `""` when absent).
#[derive(Deserialize)]
struct WireEvent {
    event: String,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    distinct_id: Option<Value>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    elements_chain: Option<String>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    // Flat destination fields.
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    current_url: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    button_or_link_text: Option<String>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn prop_str<'a>(props: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    props.and_then(|p| p.get(key)).and_then(Value::as_str)
}

/// A distinct id may arrive as a string or a number.
fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => non_empty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl WireEvent {
    fn into_event(
        self,
        person_props: Option<&Map<String, Value>>,
        at: &str,
    ) -> Result<Event, Error> {
        let props = self.properties.as_ref();
        let name = self.event.trim().to_owned();
        if name.is_empty() {
            return Err(Error::shape(format!("{at}.event"), "must not be empty"));
        }
        let distinct = id_string(self.distinct_id.as_ref())
            .or_else(|| id_string(props.and_then(|p| p.get("distinct_id"))))
            .ok_or_else(|| Error::shape(format!("{at}.distinct_id"), "is required"))?;
        let user_id = UserId::parse(&distinct)
            .map_err(|e| Error::shape(format!("{at}.distinct_id"), e.to_string()))?;
        let session_id = match non_empty(prop_str(props, "$session_id"))
            .or_else(|| non_empty(self.session_id.as_deref()))
        {
            Some(raw) => SessionId::parse(&raw)
                .map_err(|e| Error::shape(format!("{at}.properties.$session_id"), e.to_string()))?,
            None => SessionId::derived_from(&user_id),
        };
        let timestamp = self
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let current_url = non_empty(prop_str(props, "$current_url"))
            .or_else(|| non_empty(self.current_url.as_deref()))
            .unwrap_or_default();
        let email = non_empty(prop_str(props, "email"))
            .or_else(|| non_empty(self.email.as_deref()))
            .or_else(|| non_empty(prop_str(person_props, "email")))
            .or_else(|| {
                let set = props.and_then(|p| p.get("$set")).and_then(Value::as_object);
                non_empty(prop_str(set, "email"))
            })
            .filter(|e| e.contains('@'));
        let chain = non_empty(self.elements_chain.as_deref())
            .or_else(|| non_empty(prop_str(props, "$elements_chain")))
            .unwrap_or_default();
        // Older posthog-js sends `$elements` (an array) instead of the string.
        let elements = match props
            .and_then(|p| p.get("$elements"))
            .and_then(Value::as_array)
        {
            Some(items) if chain.is_empty() => elements_chain::from_posthog_elements(items),
            _ => elements_chain::parse(&chain),
        };
        let uuid = non_empty(self.uuid.as_deref());
        let dedupe_key = match &uuid {
            Some(uuid) => uuid.clone(),
            None => digest(&[
                &name,
                user_id.as_str(),
                session_id.as_str(),
                self.timestamp.as_deref().unwrap_or_default(),
                &current_url,
                &chain,
            ]),
        };
        Ok(Event {
            uuid,
            event_type: non_empty(prop_str(props, "$event_type"))
                .or_else(|| non_empty(self.event_type.as_deref())),
            el_text: non_empty(prop_str(props, "$el_text"))
                .or_else(|| non_empty(self.button_or_link_text.as_deref())),
            page_title: non_empty(prop_str(props, "title")),
            elements,
            name,
            user_id,
            session_id,
            timestamp,
            current_url,
            email,
            dedupe_key,
        })
    }
}

fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_shapes_name_the_failing_place() {
        let cases: [(&str, &str); 6] = [
            ("42", "body"),
            (r#"{"batch": 1}"#, "batch"),
            (r#"[1]"#, "body[0]"),
            (
                r#"{"batch":[{"event":"$pageview"}]}"#,
                "batch[0].distinct_id",
            ),
            (
                r#"{"event":{"event":5,"distinct_id":"u"}}"#,
                "body.event.event",
            ),
            (r#"{"distinct_id":"u"}"#, "body"),
        ];
        for (body, path) in cases {
            match parse_body(body.as_bytes()) {
                Err(Error::Shape { path: got, .. }) => assert_eq!(got, path, "body {body}"),
                other => panic!("expected a shape error for {body}, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_json_is_its_own_error() {
        assert!(matches!(
            parse_body(b"{not json"),
            Err(Error::MalformedJson(_))
        ));
    }

    #[test]
    fn event_without_session_is_kept_under_the_users_session() {
        let body = br#"{"event":"signed_up","distinct_id":"u1"}"#;
        let events = parse_body(body).unwrap();
        assert_eq!(events[0].session_id.as_str(), "user:u1");
    }

    #[test]
    fn numeric_distinct_id_and_properties_distinct_id_are_accepted() {
        let events = parse_body(
            br#"[{"event":"a","distinct_id":7},{"event":"b","properties":{"distinct_id":"p"}}]"#,
        )
        .unwrap();
        assert_eq!(events[0].user_id.as_str(), "7");
        assert_eq!(events[1].user_id.as_str(), "p");
    }

    #[test]
    fn events_without_uuid_get_a_stable_dedupe_key() {
        let body = br#"{"event":"$pageview","distinct_id":"u","timestamp":"2026-01-01T00:00:00Z"}"#;
        let a = parse_body(body).unwrap();
        let b = parse_body(body).unwrap();
        assert_eq!(a[0].dedupe_key, b[0].dedupe_key);
    }
}

#[cfg(test)]
mod regressions {
    /// Inputs the fuzzer found slow or crashing; each must parse (or be refused) quickly.
    #[test]
    fn fuzz_regressions_parse_without_panicking() {
        let quadratic =
            include_bytes!("../../fuzz/regressions/webhook_body/quadratic-brackets.json");
        if let Ok(events) = super::parse_body(quadratic) {
            for event in &events {
                let _ = crate::ingest::classify(event, chrono::Utc::now());
            }
        }
    }
}

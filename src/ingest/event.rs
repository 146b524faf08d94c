//! Wire shapes of PostHog deliveries and their conversion into [`Event`]s.
//!
//! Accepted bodies: the stock webhook `{"event":{…},"person":{…}}`, the flat body
//! of Autoplay's Hog destination, `{"batch":[…]}` and a bare array. Items of a
//! batch or array may be any of the single shapes.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
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
///
/// Typed all the way: the body is never built as a `serde_json::Value`, so the
/// dozens of posthog-js properties we do not read are skipped, not allocated.
pub fn parse_body(body: &[u8]) -> Result<Vec<Event>, Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::MalformedJson(serde::de::Error::custom("body is not UTF-8")))?;
    match text.trim_start().as_bytes().first() {
        Some(b'[') => parse_raw_items(text, Place::BODY),
        Some(b'{') => {
            let probe: BatchProbe<'_> = serde_json::from_str(text).map_err(Error::MalformedJson)?;
            match probe.batch {
                Some(batch) => parse_raw_items(batch.get(), Place::BATCH),
                None => Ok(vec![parse_raw_item(text, Place::BODY)?]),
            }
        }
        _ => {
            // Still tell malformed JSON apart from a scalar.
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(Error::MalformedJson)?;
            Err(Error::shape(
                "body",
                "must be a JSON object (an event, or {\"batch\": [...]}) or an array of events",
            ))
        }
    }
}

/// Parses already-decoded events (capture batches), named `batch[i]` in errors.
pub fn parse_events(items: Vec<Value>) -> Result<Vec<Event>, Error> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = Place::BATCH.item(i);
            if !item.is_object() {
                return Err(Error::shape(
                    at.to_string(),
                    "each event must be a JSON object",
                ));
            }
            match WireItem::deserialize(&item) {
                Ok(wire) => wire.into_event(at),
                Err(_) => typed::<WireItem, _>(item, at)?.into_event(at),
            }
        })
        .collect()
}

/// Only whether the object has a `batch`; every other key is skipped unread.
#[derive(Deserialize)]
struct BatchProbe<'a> {
    #[serde(borrow, default)]
    batch: Option<&'a RawValue>,
}

/// Where in the body an item is, for error messages; only formatted when an
/// error is made.
#[derive(Debug, Clone, Copy)]
struct Place {
    root: &'static str,
    index: Option<usize>,
    /// Inside a stock body's `event` object.
    stock: bool,
}

impl Place {
    const BODY: Place = Place {
        root: "body",
        index: None,
        stock: false,
    };
    const BATCH: Place = Place {
        root: "batch",
        index: None,
        stock: false,
    };

    fn item(self, index: usize) -> Place {
        Place {
            index: Some(index),
            ..self
        }
    }

    fn stock(self) -> Place {
        Place {
            stock: true,
            ..self
        }
    }

    /// `{self}.{field}`.
    fn field(self, field: &str) -> String {
        format!("{self}.{field}")
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.root)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        if self.stock {
            f.write_str(".event")?;
        }
        Ok(())
    }
}

fn parse_raw_items(text: &str, at: Place) -> Result<Vec<Event>, Error> {
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            Error::MalformedJson(e)
        } else {
            Error::shape(at.to_string(), "must be an array of events")
        }
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_raw_item(item.get(), at.item(i)))
        .collect()
}

fn parse_raw_item(text: &str, at: Place) -> Result<Event, Error> {
    if !text.trim_start().starts_with('{') {
        return Err(Error::shape(
            at.to_string(),
            "each event must be a JSON object",
        ));
    }
    // Plain serde first; only a refused item pays for path tracking, in a
    // second pass that names the failing place.
    match serde_json::from_str::<WireItem>(text) {
        Ok(wire) => wire.into_event(at),
        Err(_) => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            typed::<WireItem, _>(&mut deserializer, at)?.into_event(at)
        }
    }
}

fn typed<'de, T, D>(deserializer: D, at: Place) -> Result<T, Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let inner = err.path().to_string();
        let path = if inner == "." {
            at.to_string()
        } else {
            format!("{at}.{inner}")
        };
        Error::shape(path, err.into_inner().to_string())
    })
}

/// One delivered item: the stock webhook body `{"event": {…}, "person": {…}}`
/// or a PostHog event itself, which is also the flat body of Autoplay's
/// destination (whose extra fields are strings, `""` when absent). The type of
/// `event` tells them apart during the one pass (no `flatten` or `untagged`,
/// which would buffer the whole item).
#[derive(Deserialize)]
struct WireItem {
    event: EventField,
    #[serde(default)]
    person: Option<WirePerson>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    distinct_id: Option<Value>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    elements_chain: Option<String>,
    #[serde(default)]
    properties: Option<Properties>,
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

enum EventField {
    Name(String),
    Stock(Box<WireItem>),
}

impl<'de> Deserialize<'de> for EventField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = EventField;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event name or an event object")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventField, E> {
                Ok(EventField::Name(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<EventField, A::Error> {
                WireItem::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|e| EventField::Stock(Box::new(e)))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

impl WireItem {
    fn into_event(self, at: Place) -> Result<Event, Error> {
        match &self.event {
            EventField::Name(name) => self.to_event_named(name, None, at),
            EventField::Stock(event) => {
                let at = at.stock();
                let person_email = self
                    .person
                    .as_ref()
                    .and_then(|p| p.properties.as_ref())
                    .and_then(|p| p.email.as_ref());
                match &event.event {
                    EventField::Name(name) => event.to_event_named(name, person_email, at),
                    EventField::Stock(_) => {
                        Err(Error::shape(at.field("event"), "must be a string"))
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct WirePerson {
    #[serde(default)]
    properties: Option<PersonProperties>,
}

#[derive(Deserialize)]
struct PersonProperties {
    #[serde(default)]
    email: Option<Value>,
}

/// The event properties we read. Values are kept as JSON because senders are
/// loose about types; a non-string where a string is expected is ignored, as
/// before. Everything else posthog-js sends is skipped.
#[derive(Deserialize, Default)]
struct Properties {
    #[serde(rename = "$session_id", default)]
    session_id: Option<Value>,
    #[serde(rename = "$current_url", default)]
    current_url: Option<Value>,
    #[serde(default)]
    email: Option<Value>,
    #[serde(rename = "$set", default)]
    set: Option<Value>,
    #[serde(rename = "$elements_chain", default)]
    elements_chain: Option<Value>,
    #[serde(rename = "$elements", default)]
    elements: Option<Value>,
    #[serde(rename = "$event_type", default)]
    event_type: Option<Value>,
    #[serde(rename = "$el_text", default)]
    el_text: Option<Value>,
    #[serde(default)]
    title: Option<Value>,
    #[serde(default)]
    distinct_id: Option<Value>,
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn as_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

/// A distinct id may arrive as a string or a number.
fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => non_empty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl WireItem {
    fn to_event_named(
        &self,
        name: &str,
        person_email: Option<&Value>,
        at: Place,
    ) -> Result<Event, Error> {
        let props = self.properties.as_ref();
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::shape(at.field("event"), "must not be empty"));
        }
        let distinct = id_string(self.distinct_id.as_ref())
            .or_else(|| id_string(props.and_then(|p| p.distinct_id.as_ref())))
            .ok_or_else(|| Error::shape(at.field("distinct_id"), "is required"))?;
        let user_id = UserId::parse(&distinct)
            .map_err(|e| Error::shape(at.field("distinct_id"), e.to_string()))?;
        let session_id = match non_empty(as_str(props.and_then(|p| p.session_id.as_ref())))
            .or_else(|| non_empty(self.session_id.as_deref()))
        {
            Some(raw) => SessionId::parse(&raw)
                .map_err(|e| Error::shape(at.field("properties.$session_id"), e.to_string()))?,
            None => SessionId::derived_from(&user_id),
        };
        let timestamp = self
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let current_url = non_empty(as_str(props.and_then(|p| p.current_url.as_ref())))
            .or_else(|| non_empty(self.current_url.as_deref()))
            .unwrap_or_default();
        let email = non_empty(as_str(props.and_then(|p| p.email.as_ref())))
            .or_else(|| non_empty(self.email.as_deref()))
            .or_else(|| non_empty(as_str(person_email)))
            .or_else(|| {
                let set = props.and_then(|p| p.set.as_ref());
                non_empty(as_str(set.and_then(|s| s.get("email"))))
            })
            .filter(|e| e.contains('@'));
        let chain = non_empty(self.elements_chain.as_deref())
            .or_else(|| non_empty(as_str(props.and_then(|p| p.elements_chain.as_ref()))))
            .unwrap_or_default();
        // Older posthog-js sends `$elements` (an array) instead of the string.
        let elements = match props
            .and_then(|p| p.elements.as_ref())
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
            event_type: non_empty(as_str(props.and_then(|p| p.event_type.as_ref())))
                .or_else(|| non_empty(self.event_type.as_deref())),
            el_text: non_empty(as_str(props.and_then(|p| p.el_text.as_ref())))
                .or_else(|| non_empty(self.button_or_link_text.as_deref())),
            page_title: non_empty(as_str(props.and_then(|p| p.title.as_ref()))),
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

//! `/intent_name` and `/intent_name{"entity": "value"}`: Rasa's button payloads,
//! which select an intent outright.

use std::sync::LazyLock;

use regex::Regex;

pub struct Command {
    pub intent: String,
    pub entities: serde_json::Map<String, serde_json::Value>,
}

#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/([A-Za-z0-9_\-]+)\s*(\{.*\})?\s*$").expect("a valid literal regex")
});

/// The command in `text`, if it is one. Bad JSON after the name is no entities.
pub fn parse(text: &str) -> Option<Command> {
    let caps = COMMAND.captures(text.trim())?;
    let intent = caps.get(1)?.as_str().to_owned();
    let entities = caps
        .get(2)
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m.as_str()).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    Some(Command { intent, entities })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_entities_are_read() {
        let c = parse(r#" /inform{"rating": "5"} "#).unwrap();
        assert_eq!(c.intent, "inform");
        assert_eq!(c.entities["rating"], "5");
        assert!(parse("/greet").unwrap().entities.is_empty());
        assert!(parse("hello /greet").is_none());
        assert!(parse(r#"/greet{"bad"#).is_none());
    }
}

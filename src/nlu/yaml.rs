//! Small readers over `serde_yaml_ng` values shared by the project parsers, and
//! the sink that collects what a file had that we do not support.

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

/// Warnings about one file, prefixed with its name.
pub struct Sink<'a> {
    pub file: &'a str,
    pub warnings: &'a mut Vec<String>,
}

impl Sink<'_> {
    pub fn warn(&mut self, what: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {what}", self.file));
    }
}

/// A list as a list, a single value as a one-item list, null as nothing.
pub fn seq(value: Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

pub fn str_at(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar)
}

/// A string, number or bool as text (YAML `rating: 5` is a number).
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn bool_at(map: &Mapping, key: &str) -> Option<bool> {
    map.get(key).and_then(Value::as_bool)
}

/// An entry that is a plain name, or a one-key mapping `{name: {...}}`.
pub fn name_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) if m.len() == 1 => m.keys().next()?.as_str().map(str::to_owned),
        _ => None,
    }
}

pub fn json(value: &Value) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

pub fn keys(map: &Mapping) -> Vec<&str> {
    map.keys().filter_map(Value::as_str).collect()
}

//! Rasa 3.x project files: `nlu.yml`, `domain.yml`, `rules.yml` (or a Rasa
//! project's `data/` plus `domain.yml`) loaded into typed data. Files are told
//! apart by their top-level keys, as Rasa does. Parts we do not support are
//! warned about and skipped; broken YAML is an error naming the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

/// The project shipped in `intents/`, built into the binary.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("intents/nlu.yml", include_str!("../intents/nlu.yml")),
    ("intents/domain.yml", include_str!("../intents/domain.yml")),
    ("intents/rules.yml", include_str!("../intents/rules.yml")),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{file}{}: {message}", location.map(|(l, c)| format!(" line {l} column {c}")).unwrap_or_default())]
    Yaml {
        file: String,
        /// 1-based line and column, when the parser knows them.
        location: Option<(usize, usize)>,
        message: String,
    },
    /// Valid YAML with a value we cannot use (e.g. a bad regex for an intent).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    pub title: String,
    pub payload: String,
}

/// One variation of a `utter_*` response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseVariant {
    pub text: Option<String>,
    pub buttons: Vec<Button>,
    pub image: Option<String>,
    pub custom: Option<Json>,
    pub attachment: Option<Json>,
}

/// A simple rule: when `intent` is predicted, run `actions` in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub intent: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Project {
    /// Intents declared in the domain or used in NLU data, in first-seen order.
    pub intents: Vec<String>,
    /// `(intent, example text)`, entity markup removed.
    pub examples: Vec<(String, String)>,
    /// `(name, pattern)`; a name equal to an intent forces that intent.
    pub regexes: Vec<(String, String)>,
    pub responses: HashMap<String, Vec<ResponseVariant>>,
    pub actions: Vec<String>,
    pub rules: Vec<Rule>,
    /// What was skipped, for logs and tests.
    pub warnings: Vec<String>,
}

impl Project {
    /// Loads every `*.yml`/`*.yaml` under `dir`, recursively, in path order.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let mut paths = Vec::new();
        collect_yaml(dir, &mut paths)?;
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            files.push((path.display().to_string(), text));
        }
        Self::from_sources(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// Loads `(file name, text)` pairs (the name is for messages only).
    pub fn from_sources<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Error> {
        let mut project = Project::default();
        for (file, text) in files {
            let value: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::Yaml {
                file: file.to_owned(),
                location: e.location().map(|l| (l.line(), l.column())),
                message: e.to_string(),
            })?;
            project.add_file(file, value)?;
        }
        for warning in &project.warnings {
            tracing::warn!("{warning}");
        }
        Ok(project)
    }

    fn warn(&mut self, file: &str, what: impl std::fmt::Display) {
        self.warnings.push(format!("{file}: {what}"));
    }

    fn add_intent(&mut self, intent: &str) {
        if !self.intents.iter().any(|i| i == intent) {
            self.intents.push(intent.to_owned());
        }
    }

    fn add_file(&mut self, file: &str, value: Value) -> Result<(), Error> {
        let Value::Mapping(map) = value else {
            if !value.is_null() {
                self.warn(file, "not a mapping of keys; skipped");
            }
            return Ok(());
        };
        let training = ["nlu", "rules", "stories", "intents", "responses", "actions"];
        let is_training = map
            .keys()
            .filter_map(Value::as_str)
            .any(|k| training.contains(&k));
        if !is_training {
            // config.yml, credentials.yml, endpoints.yml: not ours to read.
            tracing::debug!(file, "no training data keys; skipped");
            return Ok(());
        }
        for (key, value) in map {
            let key = key.as_str().unwrap_or_default().to_owned();
            match key.as_str() {
                "version" => {}
                "nlu" => self.add_nlu(file, value)?,
                "rules" => self.add_rules(file, value),
                "intents" => self.add_domain_intents(file, value),
                "responses" => self.add_responses(file, value),
                "actions" => {
                    for action in seq(value) {
                        if let Some(name) = name_of(&action) {
                            self.actions.push(name);
                        }
                    }
                }
                "stories" => self.warn(file, "`stories` are not supported (use rules); ignored"),
                other => self.warn(file, format!("unknown key `{other}` ignored")),
            }
        }
        Ok(())
    }

    fn add_nlu(&mut self, file: &str, value: Value) -> Result<(), Error> {
        for item in seq(value) {
            let Value::Mapping(item) = item else {
                self.warn(file, "an `nlu` entry is not a mapping; skipped");
                continue;
            };
            let examples = item.get("examples").map(examples_of).unwrap_or_default();
            if let Some(intent) = str_at(&item, "intent") {
                self.add_intent(&intent);
                self.examples
                    .extend(examples.into_iter().map(|e| (intent.clone(), e)));
            } else if let Some(name) = str_at(&item, "regex") {
                for pattern in examples {
                    if let Err(e) = Regex::new(&pattern) {
                        return Err(Error::Invalid {
                            file: file.to_owned(),
                            message: format!("regex `{name}`: {e}"),
                        });
                    }
                    self.regexes.push((name.clone(), pattern));
                }
            } else if item.contains_key("synonym") || item.contains_key("lookup") {
                // Entity helpers: harmless without entity extraction.
            } else {
                let keys: Vec<&str> = item.keys().filter_map(Value::as_str).collect();
                self.warn(
                    file,
                    format!("unsupported nlu entry with keys {keys:?}; skipped"),
                );
            }
        }
        Ok(())
    }

    fn add_domain_intents(&mut self, file: &str, value: Value) {
        for intent in seq(value) {
            match name_of(&intent) {
                Some(name) => self.add_intent(&name),
                None => self.warn(file, "an intent entry has no name; skipped"),
            }
        }
    }

    fn add_responses(&mut self, file: &str, value: Value) {
        let Value::Mapping(map) = value else {
            self.warn(file, "`responses` is not a mapping; skipped");
            return;
        };
        for (name, variants) in map {
            let Some(name) = name.as_str() else { continue };
            let mut parsed = Vec::new();
            for variant in seq(variants) {
                let Value::Mapping(variant) = variant else {
                    self.warn(
                        file,
                        format!("response `{name}` has a variant that is not a mapping"),
                    );
                    continue;
                };
                parsed.push(self.response_variant(file, name, &variant));
            }
            self.responses.insert(name.to_owned(), parsed);
        }
    }

    fn response_variant(&mut self, file: &str, name: &str, variant: &Mapping) -> ResponseVariant {
        let mut out = ResponseVariant::default();
        for (key, value) in variant {
            match key.as_str().unwrap_or_default() {
                "text" => out.text = value.as_str().map(str::to_owned),
                "buttons" | "quick_replies" => out
                    .buttons
                    .extend(seq(value.clone()).iter().filter_map(button_of)),
                "image" => out.image = value.as_str().map(str::to_owned),
                "custom" => out.custom = serde_json::to_value(value).ok(),
                "attachment" => out.attachment = serde_json::to_value(value).ok(),
                "id" | "metadata" => {}
                other => self.warn(file, format!("response `{name}`: key `{other}` ignored")),
            }
        }
        out
    }

    fn add_rules(&mut self, file: &str, value: Value) {
        for rule in seq(value) {
            let Value::Mapping(rule) = rule else { continue };
            let name = str_at(&rule, "rule").unwrap_or_else(|| "unnamed rule".to_owned());
            if let Some(other) = rule.keys().filter_map(Value::as_str).find(|k| {
                !matches!(
                    *k,
                    "rule" | "steps" | "conversation_start" | "wait_for_user_input"
                )
            }) {
                self.warn(
                    file,
                    format!("rule `{name}`: `{other}` is not supported; rule skipped"),
                );
                continue;
            }
            let steps = rule.get("steps").cloned().map(seq).unwrap_or_default();
            let mut intent = None;
            let mut actions = Vec::new();
            let mut simple = true;
            for step in &steps {
                let step = step.as_mapping();
                match (
                    step.and_then(|s| str_at(s, "intent")),
                    step.and_then(|s| str_at(s, "action")),
                ) {
                    (Some(i), None) if intent.is_none() && actions.is_empty() => intent = Some(i),
                    (None, Some(a)) if intent.is_some() => actions.push(a),
                    _ => simple = false,
                }
            }
            match intent {
                Some(intent) if simple && !actions.is_empty() => self.rules.push(Rule {
                    name,
                    intent,
                    actions,
                }),
                _ => self.warn(
                    file,
                    format!("rule `{name}` is not `intent` followed by actions; rule skipped"),
                ),
            }
        }
    }
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

fn seq(value: Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn str_at(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An entry that is a plain name, or a one-key mapping `{name: {...}}`.
fn name_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) if m.len() == 1 => m.keys().next()?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn button_of(value: &Value) -> Option<Button> {
    let map = value.as_mapping()?;
    let title = str_at(map, "title")?;
    let payload = str_at(map, "payload")
        .or_else(|| str_at(map, "url"))
        .unwrap_or_else(|| title.clone());
    Some(Button { title, payload })
}

static ENTITY_MARKUP: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})").ok());

/// Examples as Rasa writes them: a block of `- text` lines, or a list.
fn examples_of(value: &Value) -> Vec<String> {
    let raw: Vec<String> = match value {
        Value::String(block) => block
            .lines()
            .filter_map(|line| line.trim().strip_prefix('-'))
            .map(|line| line.trim().to_owned())
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Mapping(m) => str_at(m, "text"),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|e| match ENTITY_MARKUP.as_ref() {
            Some(re) => re.replace_all(&e, "$1").into_owned(),
            None => e,
        })
        .filter(|e| !e.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_project_loads_cleanly() {
        let project = Project::from_sources(EMBEDDED.iter().copied()).unwrap();
        assert!(project.warnings.is_empty(), "{:?}", project.warnings);
        for intent in [
            "greet",
            "goodbye",
            "bot_challenge",
            "ask_what_just_happened",
            "ask_help_current_page",
        ] {
            let n = project.examples.iter().filter(|(i, _)| i == intent).count();
            assert!(n >= 15, "{intent} has {n} examples");
        }
        assert!(
            project
                .rules
                .iter()
                .any(|r| r.intent == "nlu_fallback" && r.actions == ["action_ask_llm"])
        );
        let greet = &project.responses["utter_greet"];
        assert!(greet.len() > 1, "variations");
        assert_eq!(greet[0].buttons.len(), 2);
    }

    #[test]
    fn entity_markup_and_list_examples_are_read() {
        let project = Project::from_sources([(
            "nlu.yml",
            "nlu:\n- intent: fly\n  examples: |\n    - fly to [Paris](city)\n    - go to [Rome]{\"entity\":\"city\"}\n",
        )])
        .unwrap();
        let texts: Vec<&str> = project.examples.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["fly to Paris", "go to Rome"]);
    }

    #[test]
    fn unsupported_parts_are_warned_about_not_fatal() {
        let project = Project::from_sources([
            ("domain.yml", "intents: [a]\nsession_config:\n  session_expiration_time: 60\nresponses:\n  utter_a:\n  - text: hi\n    condition: []\n"),
            ("rules.yml", "rules:\n- rule: r\n  condition:\n  - active_loop: f\n  steps:\n  - intent: a\n  - action: utter_a\nstories:\n- story: s\n"),
        ])
        .unwrap();
        let all = project.warnings.join("\n");
        assert!(
            all.contains("domain.yml: unknown key `session_config` ignored"),
            "{all}"
        );
        assert!(all.contains("key `condition` ignored"), "{all}");
        assert!(
            all.contains("rule `r`: `condition` is not supported"),
            "{all}"
        );
        assert!(all.contains("`stories` are not supported"), "{all}");
        assert!(project.rules.is_empty());
    }

    #[test]
    fn broken_yaml_names_file_and_line() {
        let err = Project::from_sources([(
            "data/nlu.yml",
            "nlu:\n- intent: a\n  examples: |\n    - x\n - bad: [\n",
        )])
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("data/nlu.yml line 5"), "{message}");
    }
}

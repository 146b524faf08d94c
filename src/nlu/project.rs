//! A Rasa 3.x project loaded into typed data: NLU examples (with entity
//! markup), regexes, synonyms and lookup tables; the domain; rules and
//! stories; the FallbackClassifier thresholds and memoization lookback from
//! `config.yml`; the action endpoint from `endpoints.yml`.
//!
//! A directory is either a Rasa project root (`domain.yml` or `domain/`, plus
//! `data/`, `config.yml`, `endpoints.yml`; anything else there is ignored with
//! a note, e.g. `tests/` and `actions/`) or a plain folder of YAML files read
//! recursively. Files are told apart by their top-level keys, as Rasa does.
//! Parts we do not support are warned about by name; broken YAML is an error
//! naming the file and line.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_yaml_ng::{Mapping, Value};

use super::domain::Domain;
use super::stories::{self, RuleDef, StoryDef};
use super::yaml::{Sink, keys, scalar, seq, str_at};

/// The project shipped in `intents/`, built into the binary.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("intents/nlu.yml", include_str!("../../intents/nlu.yml")),
    (
        "intents/domain.yml",
        include_str!("../../intents/domain.yml"),
    ),
    ("intents/rules.yml", include_str!("../../intents/rules.yml")),
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
    /// Valid YAML with a value we cannot use (e.g. a bad regex).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// An entity annotated in a training example, in characters of the clean text.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySpan {
    pub entity: String,
    /// The text as written, and the value it stands for (a synonym's target).
    pub text: String,
    pub value: String,
    pub start: usize,
    pub end: usize,
    pub role: Option<String>,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub intent: String,
    /// Markup removed: `fly to [Paris](city)` → `fly to Paris`.
    pub text: String,
    pub entities: Vec<EntitySpan>,
}

/// What `config.yml` says that we honour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectConfig {
    pub fallback_threshold: Option<f32>,
    pub ambiguity_threshold: Option<f32>,
    /// MemoizationPolicy's `max_history`.
    pub max_history: Option<usize>,
    /// AugmentedMemoizationPolicy rather than MemoizationPolicy.
    pub augmented_memoization: bool,
    /// RulePolicy's `core_fallback_action_name`.
    pub core_fallback_action: Option<String>,
}

#[derive(Debug, Default)]
pub struct Project {
    /// Intents declared in the domain or used in NLU data, in first-seen order.
    pub intents: Vec<String>,
    pub examples: Vec<Example>,
    /// `(name, pattern)`; a name equal to an intent forces that intent, any
    /// other name is an entity the pattern extracts.
    pub regexes: Vec<(String, String)>,
    /// `(text, value)`: the text, however cased, is the value.
    pub synonyms: Vec<(String, String)>,
    /// `(entity, values)`.
    pub lookups: Vec<(String, Vec<String>)>,
    pub domain: Domain,
    pub rules: Vec<RuleDef>,
    pub stories: Vec<StoryDef>,
    pub config: ProjectConfig,
    /// `endpoints.yml` `action_endpoint.url`, `${VAR}`s expanded.
    pub action_endpoint: Option<String>,
    /// What was not supported, for logs and tests.
    pub warnings: Vec<String>,
    /// Files we did not read, and why (a project root's extras).
    pub notes: Vec<String>,
}

impl Project {
    /// Loads a Rasa project root or a folder of YAML files.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let mut paths = Vec::new();
        let mut notes = Vec::new();
        if is_project_root(dir) {
            for entry in read_dir(dir)? {
                let name = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                match name {
                    "domain" | "data" if entry.is_dir() => collect_yaml(&entry, &mut paths)?,
                    "domain.yml" | "domain.yaml" | "config.yml" | "config.yaml"
                    | "endpoints.yml" | "endpoints.yaml" => paths.push(entry),
                    _ => notes.push(format!(
                        "{}: not part of a Rasa project's training data; ignored",
                        entry.display()
                    )),
                }
            }
        } else {
            collect_yaml(dir, &mut paths)?;
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            files.push((path.display().to_string(), text));
        }
        let mut project = Self::from_sources(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))?;
        for note in &notes {
            tracing::info!("{note}");
        }
        project.notes = notes;
        Ok(project)
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
        for intent in project.domain.intents.clone() {
            project.add_intent(&intent);
        }
        for warning in &project.warnings {
            tracing::warn!("{warning}");
        }
        Ok(project)
    }

    fn add_intent(&mut self, intent: &str) {
        if !self.intents.iter().any(|i| i == intent) {
            self.intents.push(intent.to_owned());
        }
    }

    fn add_file(&mut self, file: &str, value: Value) -> Result<(), Error> {
        let mut warnings = std::mem::take(&mut self.warnings);
        let result = self.add_file_to(
            file,
            value,
            &mut Sink {
                file,
                warnings: &mut warnings,
            },
        );
        self.warnings = warnings;
        result
    }

    fn add_file_to(&mut self, file: &str, value: Value, sink: &mut Sink<'_>) -> Result<(), Error> {
        let Value::Mapping(map) = value else {
            if !value.is_null() {
                sink.warn("not a mapping of keys; skipped");
            }
            return Ok(());
        };
        let has = |names: &[&str]| keys(&map).iter().any(|k| names.contains(k));
        if has(&["pipeline", "policies", "recipe"]) {
            self.add_config(&map, sink);
            return Ok(());
        }
        if has(&[
            "action_endpoint",
            "tracker_store",
            "event_broker",
            "lock_store",
            "nlg",
            "models",
        ]) {
            self.add_endpoints(&map, sink);
            return Ok(());
        }
        let training = [
            "nlu",
            "rules",
            "stories",
            "intents",
            "responses",
            "actions",
            "slots",
            "forms",
            "entities",
        ];
        if !has(&training) {
            // credentials.yml and the like: not ours to read.
            tracing::debug!(file, "no training data keys; skipped");
            return Ok(());
        }
        for (key, value) in map {
            let key = key.as_str().unwrap_or_default().to_owned();
            match key.as_str() {
                "version" => {}
                "nlu" => self.add_nlu(file, value, sink)?,
                "rules" => self.rules.extend(stories::rules(value, sink)),
                "stories" => self.stories.extend(stories::stories(value, sink)),
                _ => self.domain.add(&key, value, sink),
            }
        }
        Ok(())
    }

    fn add_config(&mut self, map: &Mapping, sink: &mut Sink<'_>) {
        for component in map.get("pipeline").cloned().map(seq).unwrap_or_default() {
            let Some(component) = component.as_mapping() else {
                continue;
            };
            if str_at(component, "name").as_deref() == Some("FallbackClassifier") {
                let number = |key| component.get(key).and_then(Value::as_f64).map(|v| v as f32);
                self.config.fallback_threshold = number("threshold");
                self.config.ambiguity_threshold = number("ambiguity_threshold");
            }
        }
        for policy in map.get("policies").cloned().map(seq).unwrap_or_default() {
            let Some(policy) = policy.as_mapping() else {
                continue;
            };
            match str_at(policy, "name").as_deref() {
                Some(name @ ("MemoizationPolicy" | "AugmentedMemoizationPolicy")) => {
                    self.config.augmented_memoization = name == "AugmentedMemoizationPolicy";
                    self.config.max_history = policy
                        .get("max_history")
                        .and_then(Value::as_u64)
                        .map(|h| h as usize);
                }
                Some("RulePolicy") => {
                    self.config.core_fallback_action = str_at(policy, "core_fallback_action_name");
                }
                Some(other) => sink.warn(format!(
                    "policy `{other}` is not supported: rules and memorised stories decide, \
                     and what they do not cover goes to the LLM"
                )),
                None => {}
            }
        }
    }

    fn add_endpoints(&mut self, map: &Mapping, sink: &mut Sink<'_>) {
        for key in keys(map) {
            match key {
                "action_endpoint" => {
                    self.action_endpoint = map
                        .get("action_endpoint")
                        .and_then(Value::as_mapping)
                        .and_then(|m| str_at(m, "url"))
                        .map(|url| expand_env(&url));
                }
                "tracker_store" | "lock_store" | "event_broker" | "nlg" | "models" => sink.warn(format!(
                    "`{key}` is not supported (conversations are kept by copilot-server); ignored"
                )),
                other => sink.warn(format!("unknown key `{other}` ignored")),
            }
        }
    }

    fn add_nlu(&mut self, file: &str, value: Value, sink: &mut Sink<'_>) -> Result<(), Error> {
        for item in seq(value) {
            let Value::Mapping(item) = item else {
                sink.warn("an `nlu` entry is not a mapping; skipped");
                continue;
            };
            let lines = item.get("examples").map(lines_of).unwrap_or_default();
            if let Some(intent) = str_at(&item, "intent") {
                self.add_intent(&intent);
                for line in lines {
                    let (text, mut entities) = parse_markup(&line);
                    if text.is_empty() {
                        continue;
                    }
                    for span in &mut entities {
                        if span.value != span.text {
                            self.synonyms.push((span.text.clone(), span.value.clone()));
                        }
                    }
                    self.examples.push(Example {
                        intent: intent.clone(),
                        text,
                        entities,
                    });
                }
            } else if let Some(name) = str_at(&item, "regex") {
                for pattern in lines {
                    if let Err(e) = Regex::new(&pattern) {
                        return Err(Error::Invalid {
                            file: file.to_owned(),
                            message: format!("regex `{name}`: {e}"),
                        });
                    }
                    self.regexes.push((name.clone(), pattern));
                }
            } else if let Some(value) = str_at(&item, "synonym") {
                for text in lines {
                    self.synonyms.push((text, value.clone()));
                }
            } else if let Some(entity) = str_at(&item, "lookup") {
                self.lookups.push((entity, lines));
            } else {
                sink.warn(format!(
                    "unsupported nlu entry with keys {:?}; skipped",
                    keys(&item)
                ));
            }
        }
        Ok(())
    }
}

fn is_project_root(dir: &Path) -> bool {
    (dir.join("domain.yml").is_file()
        || dir.join("domain.yaml").is_file()
        || dir.join("domain").is_dir())
        && (dir.join("data").is_dir() || dir.join("config.yml").is_file())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_owned(),
        source,
    })?;
    Ok(entries.flatten().map(|e| e.path()).collect())
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for path in read_dir(dir)? {
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

#[expect(clippy::expect_used, reason = "literal regexes, checked by the tests")]
static ENV_VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("valid"));

/// `${NAME}` from the environment, as Rasa's endpoints.yml allows.
fn expand_env(text: &str) -> String {
    ENV_VAR
        .replace_all(text, |caps: &regex::Captures<'_>| {
            std::env::var(&caps[1]).unwrap_or_default()
        })
        .into_owned()
}

/// Examples as Rasa writes them: a block of `- text` lines, or a list.
fn lines_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(block) => block
            .lines()
            .filter_map(|line| line.trim().strip_prefix('-'))
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Mapping(m) => str_at(m, "text"),
                other => scalar(other),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[expect(clippy::expect_used, reason = "literal regexes, checked by the tests")]
static ENTITY_MARKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[([^\]]+)\](?:\(([^)]*)\)|(\{[^}]*\}))").expect("valid"));

/// `fly to [Paris](city)` and `go to [NYC]{"entity": "city", "value": "New York"}`
/// → the clean text and the spans (in characters).
fn parse_markup(line: &str) -> (String, Vec<EntitySpan>) {
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut last = 0;
    for caps in ENTITY_MARKUP.captures_iter(line) {
        let (Some(whole), Some(inner)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        text.push_str(&line[last..whole.start()]);
        last = whole.end();
        let start = text.chars().count();
        text.push_str(inner.as_str());
        let end = text.chars().count();
        let written = inner.as_str().to_owned();
        let (entity, value, role, group) = if let Some(name) = caps.get(2) {
            // Rasa 1's `(entity:value)` still appears in old projects.
            match name.as_str().split_once(':') {
                Some((e, v)) => (e.to_owned(), v.to_owned(), None, None),
                None => (name.as_str().to_owned(), written.clone(), None, None),
            }
        } else {
            let json: serde_json::Value = caps
                .get(3)
                .and_then(|m| serde_json::from_str(m.as_str()).ok())
                .unwrap_or_default();
            let field = |k: &str| {
                json.get(k).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                })
            };
            let Some(entity) = field("entity") else {
                continue;
            };
            (
                entity,
                field("value").unwrap_or_else(|| written.clone()),
                field("role"),
                field("group"),
            )
        };
        spans.push(EntitySpan {
            entity,
            text: written,
            value,
            start,
            end,
            role,
            group,
        });
    }
    text.push_str(&line[last..]);
    (text.trim().to_owned(), spans)
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
            let n = project
                .examples
                .iter()
                .filter(|e| e.intent == intent)
                .count();
            assert!(n >= 15, "{intent} has {n} examples");
        }
        let greet = &project.domain.responses["utter_greet"];
        assert!(greet.len() > 1, "variations");
        assert_eq!(greet[0].buttons.len(), 2);
    }

    #[test]
    fn entity_markup_is_read_with_spans_and_synonyms() {
        let project = Project::from_sources([(
            "nlu.yml",
            "nlu:\n- intent: fly\n  examples: |\n    - fly to [Paris](city) today\n    - go to [NYC]{\"entity\":\"city\", \"value\": \"New York\"}\n- synonym: New York\n  examples: |\n    - big apple\n- lookup: city\n  examples: |\n    - Rome\n",
        )])
        .unwrap();
        let first = &project.examples[0];
        assert_eq!(first.text, "fly to Paris today");
        assert_eq!((first.entities[0].start, first.entities[0].end), (7, 12));
        assert_eq!(first.entities[0].entity, "city");
        let second = &project.examples[1];
        assert_eq!(second.text, "go to NYC");
        assert_eq!(second.entities[0].value, "New York");
        assert!(
            project
                .synonyms
                .contains(&("NYC".into(), "New York".into()))
        );
        assert!(
            project
                .synonyms
                .contains(&("big apple".into(), "New York".into()))
        );
        assert_eq!(
            project.lookups,
            [("city".to_owned(), vec!["Rome".to_owned()])]
        );
    }

    #[test]
    fn unsupported_parts_are_warned_about_by_name() {
        let project = Project::from_sources([
            ("domain.yml", "intents: [a]\nsession_config:\n  session_expiration_time: 60\nresponses:\n  utter_a:\n  - text: hi\n    foo: 1\n"),
            ("stories.yml", "stories:\n- story: s\n  steps:\n  - intent: a\n  - checkpoint: c1\n"),
            ("config.yml", "pipeline:\n- name: FallbackClassifier\n  threshold: 0.4\n  ambiguity_threshold: 0.05\npolicies:\n- name: TEDPolicy\n- name: MemoizationPolicy\n  max_history: 3\n"),
            ("endpoints.yml", "action_endpoint:\n  url: http://localhost:5055/webhook\ntracker_store:\n  type: redis\n"),
        ])
        .unwrap();
        let all = project.warnings.join("\n");
        assert!(
            all.contains("domain.yml: `session_config` ignored"),
            "{all}"
        );
        assert!(
            all.contains("response `utter_a`: key `foo` ignored"),
            "{all}"
        );
        assert!(
            all.contains("story `s`: `checkpoint` steps are not supported"),
            "{all}"
        );
        assert!(all.contains("policy `TEDPolicy` is not supported"), "{all}");
        assert!(all.contains("`tracker_store` is not supported"), "{all}");
        assert!(project.stories.is_empty());
        assert_eq!(project.config.fallback_threshold, Some(0.4));
        assert_eq!(project.config.ambiguity_threshold, Some(0.05));
        assert_eq!(project.config.max_history, Some(3));
        assert_eq!(
            project.action_endpoint.as_deref(),
            Some("http://localhost:5055/webhook")
        );
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

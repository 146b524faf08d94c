//! Entity extraction as Rasa reports it: regexes named after an entity and
//! lookup tables (Rasa's RegexEntityExtractor), and the values annotated in
//! training examples, found again as whole words (ours, in place of DIET's
//! learned tagger). Synonyms map what was written to its value
//! (Rasa's EntitySynonymMapper). Matching ignores case.

use std::collections::HashMap;

use regex::Regex;
use serde::Serialize;
use serde_json::Value as Json;

use super::project::Project;

pub const REGEX_EXTRACTOR: &str = "RegexEntityExtractor";
pub const VALUE_EXTRACTOR: &str = "CopilotEntityExtractor";
pub const SYNONYM_MAPPER: &str = "EntitySynonymMapper";

/// One entity in `/model/parse`'s and the tracker's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub entity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
    pub value: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_entity: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extractor: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Entity {
    /// An entity given outright (a `/intent{"entity": "value"}` payload).
    pub fn given(entity: String, value: Json) -> Self {
        Self {
            entity,
            start: None,
            end: None,
            value,
            confidence_entity: None,
            extractor: None,
            processors: Vec::new(),
            role: None,
            group: None,
        }
    }
}

struct Pattern {
    entity: String,
    regex: Regex,
    extractor: &'static str,
}

pub struct EntityExtractor {
    patterns: Vec<Pattern>,
    /// Lower-cased written text → value.
    synonyms: HashMap<String, String>,
}

impl EntityExtractor {
    pub fn new(project: &Project) -> Self {
        let mut patterns = Vec::new();
        for (name, pattern) in &project.regexes {
            if project.intents.contains(name) {
                continue;
            }
            if let Ok(regex) = Regex::new(&format!("(?i){pattern}")) {
                patterns.push(Pattern {
                    entity: name.clone(),
                    regex,
                    extractor: REGEX_EXTRACTOR,
                });
            }
        }
        for (entity, values) in &project.lookups {
            if let Some(regex) = alternation(values.iter().map(String::as_str)) {
                patterns.push(Pattern {
                    entity: entity.clone(),
                    regex,
                    extractor: REGEX_EXTRACTOR,
                });
            }
        }
        let mut annotated: Vec<(&str, Vec<&str>)> = Vec::new();
        for span in project.examples.iter().flat_map(|e| &e.entities) {
            match annotated.iter_mut().find(|(e, _)| *e == span.entity) {
                Some((_, values)) => values.push(&span.text),
                None => annotated.push((&span.entity, vec![&span.text])),
            }
        }
        // A synonym of an annotated value is a way of writing that entity too.
        for (entity, values) in &mut annotated {
            let targets: Vec<String> = project
                .examples
                .iter()
                .flat_map(|e| &e.entities)
                .filter(|span| span.entity == *entity)
                .map(|span| span.value.to_lowercase())
                .collect();
            for (text, value) in &project.synonyms {
                if targets.contains(&value.to_lowercase()) {
                    values.push(text);
                }
            }
        }
        for (entity, values) in annotated {
            if let Some(regex) = alternation(values.into_iter()) {
                patterns.push(Pattern {
                    entity: entity.to_owned(),
                    regex,
                    extractor: VALUE_EXTRACTOR,
                });
            }
        }
        // As Rasa's mapper: annotated values map to themselves, so the mapper
        // is listed for every value it knows, changed or not.
        let mut synonyms: HashMap<String, String> = project
            .examples
            .iter()
            .flat_map(|e| &e.entities)
            .map(|span| (span.value.to_lowercase(), span.value.clone()))
            .collect();
        for (text, value) in &project.synonyms {
            synonyms.insert(text.to_lowercase(), value.clone());
        }
        Self { patterns, synonyms }
    }

    /// Entities in `text`, left to right; where two overlap, the earlier and
    /// then the longer wins.
    pub fn extract(&self, text: &str) -> Vec<Entity> {
        let mut found: Vec<(usize, usize, &Pattern)> = Vec::new();
        for pattern in &self.patterns {
            for m in pattern.regex.find_iter(text) {
                if m.start() < m.end() {
                    found.push((m.start(), m.end(), pattern));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut entities = Vec::new();
        let mut taken_until = 0;
        for (start, end, pattern) in found {
            if start < taken_until {
                continue;
            }
            taken_until = end;
            let written = &text[start..end];
            let (value, processors) = match self.synonyms.get(&written.to_lowercase()) {
                Some(value) => (value.clone(), vec![SYNONYM_MAPPER]),
                None => (written.to_owned(), Vec::new()),
            };
            entities.push(Entity {
                entity: pattern.entity.clone(),
                start: Some(text[..start].chars().count()),
                end: Some(text[..end].chars().count()),
                value: Json::String(value),
                confidence_entity: (pattern.extractor == VALUE_EXTRACTOR).then_some(1.0),
                extractor: Some(pattern.extractor),
                processors,
                role: None,
                group: None,
            });
        }
        entities
    }
}

/// `\b(?:a|b|c)\b`, longest first so `New York City` beats `New York`.
fn alternation<'a>(values: impl Iterator<Item = &'a str>) -> Option<Regex> {
    let mut values: Vec<&str> = values.map(str::trim).filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    values.dedup();
    let escaped: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
    Regex::new(&format!(r"(?i)\b(?:{})\b", escaped.join("|"))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extractor() -> EntityExtractor {
        let project = Project::from_sources([(
            "nlu.yml",
            "nlu:\n- intent: rate\n  examples: |\n    - I give it [5](rating)\n    - rate [Acme Projects](product) [4](rating)\n- regex: account_number\n  examples: |\n    - \\d{8}\n- lookup: city\n  examples: |\n    - Paris\n    - New York\n- synonym: New York\n  examples: |\n    - NYC\n    - nyc\n- lookup: city\n  examples: |\n    - NYC\n",
        )])
        .unwrap();
        EntityExtractor::new(&project)
    }

    #[test]
    fn regexes_lookups_and_annotated_values_are_found_with_char_offsets() {
        let found =
            extractor().extract("é: account 12345678 for acme projects, rating 5, from nyc");
        let summary: Vec<(&str, &Json, Option<usize>, Option<&str>)> = found
            .iter()
            .map(|e| (e.entity.as_str(), &e.value, e.start, e.extractor))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "account_number",
                    &Json::from("12345678"),
                    Some(11),
                    Some(REGEX_EXTRACTOR)
                ),
                (
                    "product",
                    &Json::from("Acme Projects"),
                    Some(24),
                    Some(VALUE_EXTRACTOR)
                ),
                ("rating", &Json::from("5"), Some(46), Some(VALUE_EXTRACTOR)),
                (
                    "city",
                    &Json::from("New York"),
                    Some(54),
                    Some(REGEX_EXTRACTOR)
                ),
            ]
        );
        assert_eq!(found[3].processors, [SYNONYM_MAPPER]);
        assert!(extractor().extract("nothing here").is_empty());
    }
}

//! The matcher: a message in, Rasa's parse out (intent, ranking, entities).
//! A `/intent{...}` command selects its intent; a regex named after an intent
//! forces it; otherwise the classifier decides, and Rasa's FallbackClassifier
//! rules apply: below `fallback_threshold`, or with the best two intents closer
//! than `ambiguity_threshold`, the intent is `nlu_fallback`. Examples labelled
//! `nlu_fallback` train an out-of-scope class of their own.

use regex::Regex;
use serde::Serialize;

use super::classifier::Classifier;
use super::command;
use super::entities::{Entity, EntityExtractor};
use super::features::{Vocabulary, features};
use super::project::Project;

/// The intent given to messages nothing matches well enough.
pub const FALLBACK: &str = "nlu_fallback";

/// Rasa's FallbackClassifier defaults.
pub const DEFAULT_FALLBACK_THRESHOLD: f32 = 0.3;
pub const DEFAULT_AMBIGUITY_THRESHOLD: f32 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub fallback: f32,
    pub ambiguity: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            fallback: DEFAULT_FALLBACK_THRESHOLD,
            ambiguity: DEFAULT_AMBIGUITY_THRESHOLD,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentScore {
    pub name: String,
    pub confidence: f32,
}

/// See [`Matcher::doubt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    None,
    Fallback,
    Ambiguous,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub intent: IntentScore,
    /// Best first, at most ten; the chosen intent first.
    pub ranking: Vec<IntentScore>,
    pub entities: Vec<Entity>,
}

pub struct Matcher {
    intents: Vec<String>,
    vocabulary: Vocabulary,
    classifier: Classifier,
    forced: Vec<(usize, Regex)>,
    entities: EntityExtractor,
    thresholds: Thresholds,
}

impl Matcher {
    pub fn train(project: &Project, thresholds: Thresholds) -> Self {
        let mut intents: Vec<String> = project.intents.clone();
        if !intents.iter().any(|i| i == FALLBACK) {
            intents.push(FALLBACK.to_owned());
        }
        let raw: Vec<(usize, _)> = project
            .examples
            .iter()
            .filter_map(|e| {
                let intent = intents.iter().position(|i| *i == e.intent)?;
                Some((intent, features(&e.text)))
            })
            .collect();
        let documents: Vec<_> = raw.iter().map(|(_, f)| f.clone()).collect();
        let vocabulary = Vocabulary::fit(&documents);
        let examples: Vec<_> = raw
            .iter()
            .map(|(intent, f)| (*intent, vocabulary.vector(f)))
            .collect();
        let classifier = Classifier::train(&examples, intents.len(), vocabulary.len());
        let forced = project
            .regexes
            .iter()
            .filter_map(|(name, pattern)| {
                let intent = intents.iter().position(|i| i == name)?;
                Some((intent, Regex::new(pattern).ok()?))
            })
            .collect();
        Self {
            intents,
            vocabulary,
            classifier,
            forced,
            entities: EntityExtractor::new(project),
            thresholds,
        }
    }

    /// Whether a classification fell back, and why: nothing was confident
    /// enough, or the best intent was confident but too close to the second.
    pub fn doubt(&self, classification: &Classification) -> Doubt {
        if classification.intent.name != FALLBACK {
            return Doubt::None;
        }
        let runner_up = classification.ranking.get(1).map_or(0.0, |s| s.confidence);
        if runner_up >= self.thresholds.fallback {
            Doubt::Ambiguous
        } else {
            Doubt::Fallback
        }
    }

    /// The intents it can answer, in the project's order (`nlu_fallback` last
    /// unless the project names it).
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    pub fn knows(&self, intent: &str) -> bool {
        self.intents.iter().any(|i| i == intent)
    }

    pub fn classify(&self, text: &str) -> Classification {
        // IMPORTANT: only intents the project knows; anything else would let a
        // client mint intent names (and metric series) at will.
        if let Some(c) = command::parse(text).filter(|c| self.knows(&c.intent)) {
            let intent = IntentScore {
                name: c.intent,
                confidence: 1.0,
            };
            return Classification {
                ranking: vec![intent.clone()],
                intent,
                entities: c
                    .entities
                    .into_iter()
                    .map(|(k, v)| Entity::given(k, v))
                    .collect(),
            };
        }
        let entities = self.entities.extract(text);
        let mut ranking = self.rank(text);
        if let Some((forced, _)) = self.forced.iter().find(|(_, re)| re.is_match(text)) {
            let name = &self.intents[*forced];
            ranking.retain(|s| s.name != *name);
            ranking.insert(
                0,
                IntentScore {
                    name: name.clone(),
                    confidence: 1.0,
                },
            );
            ranking.truncate(10);
            return Classification {
                intent: ranking[0].clone(),
                ranking,
                entities,
            };
        }
        let best = ranking.first().map_or(0.0, |s| s.confidence);
        let second = ranking.get(1).map_or(0.0, |s| s.confidence);
        let top_is_fallback = ranking.first().is_some_and(|s| s.name == FALLBACK);
        if !top_is_fallback
            && (best < self.thresholds.fallback || best - second < self.thresholds.ambiguity)
        {
            // As Rasa's FallbackClassifier: nlu_fallback with the threshold as
            // its confidence, put first.
            ranking.retain(|s| s.name != FALLBACK);
            ranking.insert(
                0,
                IntentScore {
                    name: FALLBACK.to_owned(),
                    confidence: self.thresholds.fallback,
                },
            );
            ranking.truncate(10);
        }
        let intent = ranking.first().cloned().unwrap_or(IntentScore {
            name: FALLBACK.to_owned(),
            confidence: self.thresholds.fallback,
        });
        Classification {
            intent,
            ranking,
            entities,
        }
    }

    /// Intents by probability, best first, at most ten.
    fn rank(&self, text: &str) -> Vec<IntentScore> {
        let vector = self.vocabulary.vector(&features(text));
        if vector.is_empty() {
            return Vec::new();
        }
        let probabilities = self.classifier.probabilities(&vector);
        let mut ranking: Vec<IntentScore> = self
            .intents
            .iter()
            .zip(probabilities)
            .map(|(name, confidence)| IntentScore {
                name: name.clone(),
                confidence,
            })
            .collect();
        ranking.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        ranking.truncate(10);
        ranking
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::project::EMBEDDED;

    fn matcher() -> Matcher {
        let project = Project::from_sources(EMBEDDED.iter().copied()).unwrap();
        Matcher::train(&project, Thresholds::default())
    }

    #[test]
    fn commands_select_a_known_intent_with_full_confidence() {
        let m = matcher();
        let c = m.classify("/ask_bulk_edit");
        assert_eq!(
            c.intent,
            IntentScore {
                name: "ask_bulk_edit".into(),
                confidence: 1.0
            }
        );
        let c = m.classify(r#"/affirm{"row":"7"}"#);
        assert_eq!(c.intent.name, "affirm");
        assert_eq!(c.entities, [Entity::given("row".into(), "7".into())]);
        assert_ne!(m.classify("/made_up_intent").intent.name, "made_up_intent");
    }

    #[test]
    fn regexes_named_after_an_intent_force_it() {
        let m = matcher();
        let c = m.classify("what did I just do, and why is the sky blue and other unrelated words");
        assert_eq!(c.intent.name, "ask_what_just_happened");
        assert_eq!(c.intent.confidence, 1.0);
    }

    #[test]
    fn training_examples_classify_as_their_intent_and_nonsense_falls_back() {
        let m = matcher();
        // Not "hello there": a regex forces that one.
        let c = m.classify("good evening everyone");
        assert_eq!(c.intent.name, "greet");
        assert!(c.intent.confidence > DEFAULT_FALLBACK_THRESHOLD);
        let total: f32 = c.ranking.iter().map(|s| s.confidence).sum();
        assert!(total <= 1.0001, "probabilities: {total}");
        for text in ["qwxz plmok", "", "!!!"] {
            assert_eq!(m.classify(text).intent.name, FALLBACK, "{text}");
        }
    }
}

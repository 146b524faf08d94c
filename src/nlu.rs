//! Intent classification with no model download: normalised word and character
//! n-gram TF-IDF vectors, cosine similarity against every training example, an
//! intent scored by its best examples. Regexes named after an intent force it;
//! `/intent{"k":"v"}` (button payloads) selects an intent outright.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::rasa::Project;

/// The intent given to messages nothing matches well enough.
pub const FALLBACK: &str = "nlu_fallback";

/// Character n-gram sizes, taken inside `#word#`-padded tokens.
const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 2..=4;
/// Word features count more than any single character n-gram.
const WORD_WEIGHT: f32 = 2.0;
const BIGRAM_WEIGHT: f32 = 1.5;
const CHAR_WEIGHT: f32 = 1.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentScore {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub intent: IntentScore,
    /// Best first, at most ten.
    pub ranking: Vec<IntentScore>,
    /// Entities from a `/intent{"k":"v"}` command.
    pub entities: serde_json::Map<String, serde_json::Value>,
}

struct Example {
    intent: usize,
}

pub struct Matcher {
    intents: Vec<String>,
    vocabulary: HashMap<Feature, u32>,
    idf: Vec<f32>,
    /// Weight for features never seen in training (they still dilute a match).
    unseen_idf: f32,
    examples: Vec<Example>,
    /// feature → (example, weight) of the examples' L2-normalised TF-IDF vectors.
    postings: Vec<Vec<(u32, f32)>>,
    forced: Vec<(usize, Regex)>,
    fallback_threshold: f32,
    ambiguity_threshold: f32,
}

impl Matcher {
    pub fn train(project: &Project, fallback_threshold: f32, ambiguity_threshold: f32) -> Self {
        let mut intents: Vec<String> = project.intents.clone();
        let intent_index = |name: &str, intents: &mut Vec<String>| {
            intents.iter().position(|i| i == name).unwrap_or_else(|| {
                intents.push(name.to_owned());
                intents.len() - 1
            })
        };
        let raw: Vec<(usize, Vec<(Feature, f32)>)> = project
            .examples
            .iter()
            .map(|(intent, text)| (intent_index(intent, &mut intents), features(text)))
            .collect();

        let mut vocabulary: HashMap<Feature, u32> = HashMap::new();
        let mut document_frequency: Vec<f32> = Vec::new();
        for (_, feats) in &raw {
            for (name, _) in feats {
                let next = vocabulary.len() as u32;
                let id = *vocabulary.entry(*name).or_insert(next);
                if id as usize == document_frequency.len() {
                    document_frequency.push(0.0);
                }
                document_frequency[id as usize] += 1.0;
            }
        }
        let n = raw.len().max(1) as f32;
        let idf: Vec<f32> = document_frequency
            .iter()
            .map(|df| ((1.0 + n) / (1.0 + df)).ln() + 1.0)
            .collect();
        let unseen_idf = ((1.0 + n) / 1.0).ln() + 1.0;

        let mut postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); vocabulary.len()];
        let mut examples = Vec::with_capacity(raw.len());
        for (e, (intent, feats)) in raw.into_iter().enumerate() {
            let mut vector: Vec<(u32, f32)> = feats
                .iter()
                .filter_map(|(name, tf)| {
                    let id = *vocabulary.get(name)?;
                    Some((id, tf * idf[id as usize]))
                })
                .collect();
            normalise(&mut vector);
            for &(id, w) in &vector {
                postings[id as usize].push((e as u32, w));
            }
            examples.push(Example { intent });
        }

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
            idf,
            unseen_idf,
            examples,
            postings,
            forced,
            fallback_threshold,
            ambiguity_threshold,
        }
    }

    pub fn knows(&self, intent: &str) -> bool {
        intent == FALLBACK || self.intents.iter().any(|i| i == intent)
    }

    pub fn classify(&self, text: &str) -> Classification {
        // IMPORTANT: only intents the project knows; anything else would let a
        // client mint intent names (and metric series) at will.
        if let Some(command) = parse_command(text).filter(|c| self.knows(&c.intent)) {
            return Classification {
                intent: IntentScore {
                    name: command.intent,
                    confidence: 1.0,
                },
                ranking: Vec::new(),
                entities: command.entities,
            };
        }
        let ranking = self.rank(text);
        let forced = self
            .forced
            .iter()
            .find(|(_, re)| re.is_match(text))
            .map(|(i, _)| self.intents[*i].clone());
        let intent = match forced {
            Some(name) => IntentScore {
                name,
                confidence: 1.0,
            },
            None => {
                let best = ranking.first();
                let second = ranking.get(1).map_or(0.0, |s| s.confidence);
                match best {
                    Some(best)
                        if best.name != FALLBACK
                            && best.confidence >= self.fallback_threshold
                            && best.confidence - second >= self.ambiguity_threshold =>
                    {
                        best.clone()
                    }
                    Some(best) if best.name == FALLBACK => best.clone(),
                    _ => IntentScore {
                        name: FALLBACK.to_owned(),
                        confidence: 1.0 - best.map_or(0.0, |b| b.confidence),
                    },
                }
            }
        };
        Classification {
            intent,
            ranking,
            entities: serde_json::Map::new(),
        }
    }

    /// Intents by score: the mean of an intent's three best example similarities,
    /// so one lucky example does not decide alone. Examples labelled
    /// `nlu_fallback` compete too: they describe what is out of scope.
    fn rank(&self, text: &str) -> Vec<IntentScore> {
        let feats = features(text);
        let mut query: Vec<(Option<u32>, f32)> = feats
            .iter()
            .map(|(name, tf)| match self.vocabulary.get(name) {
                Some(&id) => (Some(id), tf * self.idf[id as usize]),
                None => (None, tf * self.unseen_idf),
            })
            .collect();
        let norm = query.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm == 0.0 {
            return Vec::new();
        }
        for (_, w) in &mut query {
            *w /= norm;
        }
        let mut similarity = vec![0.0f32; self.examples.len()];
        for (id, w) in &query {
            let Some(id) = id else { continue };
            for &(example, ew) in &self.postings[*id as usize] {
                similarity[example as usize] += w * ew;
            }
        }
        let mut best: Vec<[f32; 3]> = vec![[0.0; 3]; self.intents.len()];
        for (example, score) in self.examples.iter().zip(similarity) {
            let top = &mut best[example.intent];
            if score > top[2] {
                top[2] = score;
                top.sort_by(|a, b| b.total_cmp(a));
            }
        }
        let mut ranking: Vec<IntentScore> = best
            .iter()
            .enumerate()
            .map(|(i, top)| IntentScore {
                name: self.intents[i].clone(),
                confidence: (top.iter().sum::<f32>() / 3.0).clamp(0.0, 1.0),
            })
            .filter(|s| s.confidence > 0.0)
            .collect();
        ranking.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        ranking.truncate(10);
        ranking
    }
}

fn normalise(vector: &mut [(u32, f32)]) {
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in vector.iter_mut() {
            *w /= norm;
        }
    }
}

/// Lower-cased word tokens; apostrophes vanish (`i'm` → `im`), other
/// punctuation splits.
fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['\'', '’'], "")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A feature: the FNV-1a hash of its kind and text. Hashing instead of building
/// strings keeps a classification free of per-feature allocations; 64-bit
/// collisions among a few thousand features are negligible.
type Feature = u64;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Weighted feature counts: words, word bigrams, character n-grams. Sorted by
/// feature, each feature once.
fn features(text: &str) -> Vec<(Feature, f32)> {
    let words = tokens(text);
    let mut feats: Vec<(Feature, f32)> = Vec::with_capacity(words.len() * 12);
    for pair in words.windows(2) {
        let first = fnv(fnv(fnv(FNV_OFFSET, b"b"), pair[0].as_bytes()), b" ");
        feats.push((fnv(first, pair[1].as_bytes()), BIGRAM_WEIGHT));
    }
    let mut padded: Vec<char> = Vec::new();
    for word in &words {
        feats.push((fnv(fnv(FNV_OFFSET, b"w"), word.as_bytes()), WORD_WEIGHT));
        padded.clear();
        padded.push('#');
        padded.extend(word.chars());
        padded.push('#');
        for n in CHAR_NGRAMS {
            for gram in padded.windows(n) {
                let mut hash = fnv(FNV_OFFSET, b"c");
                for c in gram {
                    let mut buf = [0u8; 4];
                    hash = fnv(hash, c.encode_utf8(&mut buf).as_bytes());
                }
                feats.push((hash, CHAR_WEIGHT));
            }
        }
    }
    feats.sort_unstable_by_key(|(f, _)| *f);
    let mut merged: Vec<(Feature, f32)> = Vec::with_capacity(feats.len());
    for (feature, weight) in feats {
        match merged.last_mut() {
            Some((last, total)) if *last == feature => *total += weight,
            _ => merged.push((feature, weight)),
        }
    }
    merged
}

struct Command {
    intent: String,
    entities: serde_json::Map<String, serde_json::Value>,
}

static COMMAND: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^/([A-Za-z0-9_\-]+)\s*(\{.*\})?\s*$").ok());

/// `/intent_name` or `/intent_name{"k":"v"}` (Rasa's button payloads).
fn parse_command(text: &str) -> Option<Command> {
    let caps = COMMAND.as_ref()?.captures(text.trim())?;
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
    use crate::rasa::EMBEDDED;

    fn matcher() -> Matcher {
        let project = Project::from_sources(EMBEDDED.iter().copied()).unwrap();
        Matcher::train(&project, 0.18, 0.0)
    }

    #[test]
    fn commands_select_an_intent_with_full_confidence() {
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
        assert_eq!(c.entities["row"], "7");
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
        assert_eq!(m.classify("hello there").intent.name, "greet");
        assert_eq!(m.classify("qwxz plmok").intent.name, FALLBACK);
        assert_eq!(m.classify("").intent.name, FALLBACK);
        assert_eq!(m.classify("!!!").intent.name, FALLBACK);
    }
}

//! Text to sparse features: lower-cased word tokens, word bigrams and
//! character n-grams inside `#word#`-padded tokens, hashed (FNV-1a) so a
//! classification builds no strings, then TF-IDF weighted against a vocabulary
//! fixed at training time.

use std::collections::HashMap;

/// Character n-gram sizes, taken inside `#word#`-padded tokens.
const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 1..=4;
/// Word features count more than any single character n-gram.
const WORD_WEIGHT: f32 = 2.0;
const BIGRAM_WEIGHT: f32 = 1.5;
const CHAR_WEIGHT: f32 = 1.0;

/// A feature: the FNV-1a hash of its kind and text. 64-bit collisions among a
/// few hundred thousand features are negligible.
pub type Feature = u64;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Lower-cased word tokens; apostrophes vanish (`i'm` → `im`), other
/// punctuation splits. An emoji is a token of its own: "👍" alone is a whole
/// answer to an offer, and people write "ok👍" without a space.
pub fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else if matches!(c, '\'' | '’') || is_emoji_modifier(c) {
            // Part of the word or of the emoji before it: "i'm", "👍🏽".
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if is_emoji(c) {
                tokens.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Pictographs and dingbats: the blocks emoji are drawn from (👍 ✅ ❌ ⭐ 🙅).
fn is_emoji(c: char) -> bool {
    matches!(c, '\u{1F000}'..='\u{1FAFF}' | '\u{2600}'..='\u{27BF}' | '\u{2B00}'..='\u{2BFF}')
}

/// What only changes how the emoji before it looks: skin tones, the emoji
/// presentation selector, the joiner of sequences.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c,
        '\u{1F3FB}'..='\u{1F3FF}' | '\u{FE0E}' | '\u{FE0F}' | '\u{200D}'
    )
}

/// Weighted feature counts: words, word bigrams, character n-grams. Sorted by
/// feature, each feature once.
pub fn features(text: &str) -> Vec<(Feature, f32)> {
    let words = tokens(text);
    let mut feats: Vec<(Feature, f32)> = Vec::with_capacity(words.len() * 16);
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
                // A lone pad is no evidence of anything.
                if n == 1 && gram[0] == '#' {
                    continue;
                }
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

/// A sparse vector: (feature id, weight), L2-normalised.
pub type Vector = Vec<(u32, f32)>;

/// The features seen in training and their inverse document frequencies.
pub struct Vocabulary {
    ids: HashMap<Feature, u32, foldhash::fast::FixedState>,
    idf: Vec<f32>,
}

impl Vocabulary {
    /// Smoothed IDF as scikit-learn computes it: `ln((1+n)/(1+df)) + 1`.
    pub fn fit(documents: &[Vec<(Feature, f32)>]) -> Self {
        let mut ids: HashMap<Feature, u32, foldhash::fast::FixedState> = HashMap::default();
        let mut df: Vec<f32> = Vec::new();
        for doc in documents {
            for (feature, _) in doc {
                let next = ids.len() as u32;
                let id = *ids.entry(*feature).or_insert(next);
                if id as usize == df.len() {
                    df.push(0.0);
                }
                df[id as usize] += 1.0;
            }
        }
        let n = documents.len().max(1) as f32;
        let idf = df
            .iter()
            .map(|d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
            .collect();
        Self { ids, idf }
    }

    pub fn len(&self) -> usize {
        self.idf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// TF-IDF of known features, L2-normalised; unknown features are dropped
    /// (they carry no learned evidence either way).
    pub fn vector(&self, feats: &[(Feature, f32)]) -> Vector {
        let mut vector: Vector = feats
            .iter()
            .filter_map(|(f, tf)| {
                let id = *self.ids.get(f)?;
                Some((id, tf * self.idf[id as usize]))
            })
            .collect();
        let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, w) in &mut vector {
                *w /= norm;
            }
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fold_case_and_apostrophes() {
        assert_eq!(tokens("I'm HERE, ok?"), ["im", "here", "ok"]);
    }

    #[test]
    fn an_emoji_is_a_token_and_its_modifiers_are_not() {
        assert_eq!(tokens("ok👍🏽 thanks!"), ["ok", "👍", "thanks"]);
        assert_eq!(tokens("✌️ later"), ["✌", "later"]);
        assert_eq!(tokens("👍👍"), ["👍", "👍"]);
        assert!(tokens("?!").is_empty());
    }

    #[test]
    fn vectors_are_unit_length_and_drop_unknown_features() {
        let docs = [features("hello there"), features("bye now")];
        let vocabulary = Vocabulary::fit(&docs);
        let v = vocabulary.vector(&features("hello"));
        let norm: f32 = v.iter().map(|(_, w)| w * w).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert!(vocabulary.vector(&features("zzqq")).is_empty());
    }
}

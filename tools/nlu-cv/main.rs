//! k-fold cross-validation of the intent classifier on its own training data:
//! `cargo run --example nlu_cv [-- INTENTS_DIR]` (default `intents/`).
//! Each intent's examples are dealt into five folds (a fixed shuffle per
//! repeat, three repeats); the matcher is trained on four folds with the
//! default thresholds and scored on the fifth, as the server would answer
//! (regexes, fallback and ambiguity rules included). Prints the mean accuracy
//! over all held-out examples and the accuracy per repeat: a check, beside the
//! dev sets, that a change generalises rather than fits one dev set.
//! Dev files given after the folder (`-- intents tests/nlu/dev-independent.yml`)
//! are then scored by the matcher trained on the whole folder, with each miss
//! printed: the quick loop for trying a change (`tools/nlu-eval` gives the same
//! numbers beside the scikit-learn baseline, through a running server).
#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a command-line tool: its output is the point, missing data stops it"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use copilot_server::nlu::{Matcher, Project, Thresholds};

const FOLDS: usize = 5;
const REPEATS: u64 = 3;

/// A dev set line (tools/nlu-eval's format: a flat list of `{text, intent}`).
#[derive(serde::Deserialize)]
struct DevExample {
    text: String,
    intent: String,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("intents"),
        PathBuf::from,
    );
    let dev_files: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let mut project = Project::load_dir(&dir).expect("intents load");
    let all = std::mem::take(&mut project.examples);
    let mut accuracies = Vec::new();
    let (mut correct, mut total) = (0usize, 0usize);
    for repeat in 0..REPEATS {
        // Fold of each example: its rank within its intent after a seeded
        // shuffle, modulo FOLDS, so every fold holds about a fifth of each intent.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ repeat.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut by_intent: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in all.iter().enumerate() {
            by_intent.entry(e.intent.as_str()).or_default().push(i);
        }
        let mut fold = vec![0usize; all.len()];
        let mut intents: Vec<_> = by_intent.into_iter().collect();
        intents.sort_by_key(|(name, _)| *name);
        for (_, mut members) in intents {
            for i in (1..members.len()).rev() {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                members.swap(i, (seed >> 33) as usize % (i + 1));
            }
            for (rank, member) in members.into_iter().enumerate() {
                fold[member] = rank % FOLDS;
            }
        }
        let (mut right, mut count) = (0usize, 0usize);
        for k in 0..FOLDS {
            project.examples = all
                .iter()
                .zip(&fold)
                .filter(|(_, f)| **f != k)
                .map(|(e, _)| e.clone())
                .collect();
            let matcher = Matcher::train(&project, Thresholds::default());
            for (e, _) in all.iter().zip(&fold).filter(|(_, f)| **f == k) {
                count += 1;
                if matcher.classify(&e.text).intent.name == e.intent {
                    right += 1;
                }
            }
        }
        accuracies.push(right as f64 / count.max(1) as f64);
        correct += right;
        total += count;
    }
    let per_repeat: Vec<String> = accuracies.iter().map(|a| format!("{a:.4}")).collect();
    println!(
        "cv {FOLDS}-fold x{REPEATS}: accuracy {:.4} ({correct}/{total}); per repeat {}",
        correct as f64 / total.max(1) as f64,
        per_repeat.join(" ")
    );
    project.examples = all;
    let matcher = Matcher::train(&project, Thresholds::default());
    for file in dev_files {
        let text = std::fs::read_to_string(&file).expect("dev file reads");
        let name = file.display().to_string();
        let dev: Vec<DevExample> = serde_yaml_ng::from_str(&text).expect("dev file parses");
        let mut right = 0usize;
        for e in &dev {
            let parsed = matcher.classify(&e.text);
            let got = parsed.intent;
            if got.name == e.intent {
                right += 1;
            } else {
                let ranking: Vec<String> = parsed
                    .ranking
                    .iter()
                    .take(3)
                    .map(|s| format!("{} {:.2}", s.name, s.confidence))
                    .collect();
                println!(
                    "  miss {:?}: {} -> {} ({:.2}) [{}]",
                    e.text,
                    e.intent,
                    got.name,
                    got.confidence,
                    ranking.join(", ")
                );
            }
        }
        println!(
            "dev {name}: accuracy {:.4} ({right}/{})",
            right as f64 / dev.len().max(1) as f64,
            dev.len()
        );
    }
}

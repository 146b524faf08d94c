//! Retrieval quality and latency over the demo's help pages:
//! `cargo run --release --example kb_eval`. Reads `tools/kb-eval/questions.yml`
//! (how-to questions with the sections that answer them) and a few questions
//! the pages do not cover, indexes `knowledge/demo/` as the server does, and
//! prints hit@1, hit@3, how often the offline answer is the right section or
//! rightly says nothing was found, and search latency on a 1,000-section index.
//! The baseline in the same run is a plain scan: every section scored by how
//! many of the question's words (3+ letters) its lowercased text contains.
#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a command-line tool: its output is the point, missing data stops it"
)]

use std::path::Path;
use std::time::Instant;

use copilot_server::domain::ProductId;
use copilot_server::knowledge::{Knowledge, Section, Source, read_folder};

#[derive(serde::Deserialize)]
struct Question {
    q: String,
    expect: Vec<String>,
}

/// Questions the demo's pages do not answer: the right result is nothing.
const NOT_COVERED: &[&str] = &[
    "is there a dark mode?",
    "can I connect Slack?",
    "how do I delete my account",
    "what does the pro plan cost",
    "is there a mobile app",
];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let questions: Vec<Question> = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("tools/kb-eval/questions.yml")).expect("questions"),
    )
    .expect("questions parse");
    let pages = read_folder(&root.join("knowledge/demo")).expect("demo pages");
    let sections: usize = pages.iter().map(|(_, s)| s.len()).sum();
    let demo = ProductId::parse("demo").expect("id");
    let knowledge = Knowledge::in_memory(10_000).expect("index");
    knowledge
        .replace_source(&demo, Source::Folder, &pages)
        .expect("indexed");

    let all: Vec<&Section> = pages.iter().flat_map(|(_, s)| s).collect();
    let scan_hit3 = questions
        .iter()
        .filter(|q| {
            scan(&all, &q.q)
                .iter()
                .any(|s| q.expect.contains(&s.title()))
        })
        .count();
    let (mut hit1, mut hit3, mut missed) = (0, 0, Vec::new());
    for question in &questions {
        let found = knowledge.search(&demo, &question.q, 3);
        let rank = found
            .iter()
            .position(|e| question.expect.contains(&e.title));
        match rank {
            Some(0) => {
                hit1 += 1;
                hit3 += 1;
            }
            Some(_) => hit3 += 1,
            None => missed.push((
                question.q.as_str(),
                found
                    .first()
                    .map_or("(nothing)".to_owned(), |e| e.title.clone()),
            )),
        }
    }
    let silent = NOT_COVERED
        .iter()
        .filter(|q| knowledge.search(&demo, q, 3).is_empty())
        .count();
    let n = questions.len();
    println!("## knowledge retrieval: {n} questions over {sections} sections of knowledge/demo/\n");
    println!("| metric | value |\n|---|---|");
    println!("| hit@1 | {hit1}/{n} = {:.3} |", hit1 as f64 / n as f64);
    println!(
        "| hit@3 (target >= 0.90) | {hit3}/{n} = {:.3} |",
        hit3 as f64 / n as f64
    );
    println!(
        "| hit@3, baseline word scan | {scan_hit3}/{n} = {:.3} (ours / baseline {:.2}) |",
        scan_hit3 as f64 / n as f64,
        hit3 as f64 / scan_hit3.max(1) as f64
    );
    println!(
        "| offline answer is the right section (= hit@1) | {:.3} |",
        hit1 as f64 / n as f64
    );
    println!(
        "| questions the pages do not cover that find nothing | {silent}/{} |",
        NOT_COVERED.len()
    );
    for (q, got) in &missed {
        println!("\nmissed: {q:?} -> {got}");
    }

    // Latency on a 1,000-section index: the demo's sections repeated under
    // other page ids, each copy with words of its own so postings differ.
    // On disk, memory-mapped, as the server keeps it beside its database.
    let dir = std::env::temp_dir().join(format!("kb-eval-{}", std::process::id()));
    let on_disk = Knowledge::open(Some(&dir), 10_000).expect("index on disk");
    let in_memory = Knowledge::in_memory(10_000).expect("index");
    let copies: Vec<(String, Vec<Section>)> = (0..1000)
        .map(|i| {
            let mut section = all[i % all.len()].clone();
            section
                .body
                .push_str(&format!(" filler{} word{} topic{}", i % 97, i % 13, i));
            (format!("copy-{i}.md"), vec![section])
        })
        .collect();
    let mut runs = Vec::new();
    for big in [&on_disk, &in_memory] {
        big.replace_source(&demo, Source::Folder, &copies)
            .expect("indexed");
        let mut times = Vec::new();
        for _ in 0..50 {
            for question in &questions {
                let started = Instant::now();
                std::hint::black_box(big.search(&demo, &question.q, 3));
                times.push(started.elapsed());
            }
        }
        runs.push(percentiles(times));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let big_sections: Vec<&Section> = copies.iter().flat_map(|(_, s)| s).collect();
    let mut scan_times = Vec::new();
    for _ in 0..50 {
        for question in &questions {
            let started = Instant::now();
            std::hint::black_box(scan(&big_sections, &question.q));
            scan_times.push(started.elapsed());
        }
    }
    let (ours, baseline) = (runs[0], percentiles(scan_times));
    println!("\n## search latency, 1,000 sections, 1,600 searches each (top 3)\n");
    println!("| search | p50 | p99 (target < 1 ms) | max |\n|---|---|---|---|");
    for (name, [p50, p99, max]) in [
        ("ours (tantivy, on disk, as the server runs)", ours),
        ("ours (tantivy, in memory)", runs[1]),
        ("baseline word scan", baseline),
    ] {
        println!("| {name} | {p50:.1} µs | {p99:.1} µs | {max:.1} µs |");
    }
    println!("\np99 ours / baseline: {:.3}", ours[1] / baseline[1]);
}

/// p50, p99 and max in microseconds.
fn percentiles(mut times: Vec<std::time::Duration>) -> [f64; 3] {
    times.sort();
    let pick = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    [pick(0.5), pick(0.99), times[times.len() - 1]].map(|t| t.as_secs_f64() * 1e6)
}

/// The baseline: the 3 sections containing most of the question's words.
fn scan<'a>(sections: &[&'a Section], question: &str) -> Vec<&'a Section> {
    let words: Vec<String> = question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_owned)
        .collect();
    let mut scored: Vec<(usize, &Section)> = sections
        .iter()
        .map(|s| {
            let text = format!("{} {}", s.title(), s.body).to_lowercase();
            (
                words.iter().filter(|w| text.contains(w.as_str())).count(),
                *s,
            )
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    scored.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    scored.into_iter().take(3).map(|(_, s)| s).collect()
}

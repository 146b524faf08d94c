//! Intent classification over the shipped intents: `cargo bench --bench nlu`.
//! Prints time per message; a `/intent` command (no scoring) is the in-run
//! baseline. Also times training the classifier on the shipped examples
//! (what every start-up does).
#![allow(
    clippy::expect_used,
    reason = "a benchmark without its data should stop loudly"
)]

use std::hint::black_box;
use std::path::Path;

use copilot_server::nlu::{Matcher, Project, Thresholds};
use criterion::{Criterion, criterion_group, criterion_main};

fn classification(c: &mut Criterion) {
    let project = Project::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("intents"))
        .expect("shipped intents load");
    let matcher = Matcher::train(&project, Thresholds::default());
    let mut group = c.benchmark_group("classify");
    // A button payload skips scoring: the in-run baseline.
    group.bench_function("command (baseline)", |b| {
        b.iter(|| matcher.classify(black_box("/ask_bulk_edit")))
    });
    group.bench_function("regex hit", |b| {
        b.iter(|| matcher.classify(black_box("what did I just do?")))
    });
    group.bench_function("n-gram match", |b| {
        b.iter(|| matcher.classify(black_box("could you walk me through this screen please")))
    });
    group.bench_function("off-topic fallback", |b| {
        b.iter(|| matcher.classify(black_box("how do I export last month's invoices to CSV?")))
    });
    group.finish();

    let mut group = c.benchmark_group("train");
    group.sample_size(20);
    let name = format!("{} examples", project.examples.len());
    group.bench_function(name, |b| {
        b.iter(|| Matcher::train(black_box(&project), Thresholds::default()))
    });
    group.finish();
}

criterion_group!(benches, classification);
criterion_main!(benches);

//! The hot path outside the matcher: `cargo bench --bench pipeline`.
//! elements_chain parsing, event → action, a context read for a user with
//! 3 sessions × 30 actions, and prompt assembly. Each group has an in-run
//! baseline so numbers compare across machines.
#![allow(
    clippy::expect_used,
    reason = "a benchmark without its data should stop loudly"
)]

use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use copilot_server::config::Settings;
use copilot_server::context::{ContextStore, OfflineSummariser};
use copilot_server::dialogue::prompt;
use copilot_server::dialogue::{Role, Turn};
use copilot_server::domain::{ProductId, UserId};
use copilot_server::ingest::{self, Classified, elements_chain};
use copilot_server::metrics::Metrics;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio_util::task::TaskTracker;

const CHAIN: &str = r#"button.btn.btn-primary:attr__class="btn btn-primary"attr__id="save-project"attr__type="submit"attr_id="save-project"nth-child="2"nth-of-type="2"text="Save changes";div.dialog-footer:attr__class="dialog-footer"nth-child="3"nth-of-type="2";form#edit-project:attr__id="edit-project"attr_id="edit-project"nth-child="1"nth-of-type="1";body:nth-child="2"nth-of-type="1""#;
const WEBHOOK: &[u8] = include_bytes!("../tests/fixtures/posthog-webhook-autocapture.json");

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("elements_chain");
    group.bench_function("split on ';' (baseline)", |b| {
        b.iter(|| black_box(CHAIN).split(';').count())
    });
    group.bench_function("parse 4 elements", |b| {
        b.iter(|| elements_chain::parse(black_box(CHAIN)))
    });
    group.finish();

    let mut group = c.benchmark_group("event_to_action");
    group.bench_function("serde_json::from_slice (baseline)", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(WEBHOOK)).map(|_| ()))
    });
    group.bench_function("parse_body + classify", |b| {
        b.iter(|| {
            let events = ingest::parse_body(black_box(WEBHOOK)).expect("fixture parses");
            events
                .iter()
                .filter(|e| matches!(ingest::classify(e, Utc::now()), Classified::Action(_)))
                .count()
        })
    });
    group.finish();
}

fn context_and_prompt(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = runtime.enter();
    let settings = Settings::load_with_env(None, |_| None).expect("defaults");
    let mut context = settings.context.clone();
    context.summary_threshold = 1_000; // raw actions only: the worst case for reads
    let store = ContextStore::new(
        &context,
        Arc::new(OfflineSummariser),
        TaskTracker::new(),
        Metrics::new(),
    );
    let product = ProductId::parse("demo").expect("id");
    let events = ingest::parse_body(WEBHOOK).expect("fixture parses");
    for session in 0..3 {
        let actions: Vec<_> = (0..30)
            .filter_map(|i| {
                let mut event = events[0].clone();
                event.session_id =
                    copilot_server::domain::SessionId::parse(&format!("s{session}")).expect("id");
                event.el_text = Some(format!("Button {i}"));
                match ingest::classify(&event, Utc::now()) {
                    Classified::Action(action) => Some(*action),
                    Classified::Ignored => None,
                }
            })
            .collect();
        store.record(&product, actions);
    }
    let user = UserId::parse("user_42").expect("id");

    let mut group = c.benchmark_group("context_read");
    group.bench_function("healthz counts (baseline)", |b| b.iter(|| store.counts()));
    group.bench_function("3 sessions x 30 actions, as text", |b| {
        b.iter(|| {
            store
                .user_activity(black_box(&product), black_box(&user))
                .to_text()
        })
    });
    group.finish();

    let activity = store.user_activity(&product, &user).to_text();
    let history: Vec<Turn> = (0..10)
        .map(|i| Turn {
            role: if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            },
            text: format!("turn {i} with a few words in it"),
        })
        .collect();
    let mut group = c.benchmark_group("prompt_assembly");
    group.bench_function("clone activity text (baseline)", |b| {
        b.iter(|| black_box(&activity).clone())
    });
    group.bench_function("system prompt + user block", |b| {
        b.iter(|| {
            let system = prompt::system_prompt(prompt::DEFAULT_SYSTEM_PROMPT, Some("Casey"), false);
            let user = prompt::user_block(
                black_box(&activity),
                &[],
                &history,
                "how do I rename a project?",
            );
            system.len() + user.len()
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, context_and_prompt);
criterion_main!(benches);

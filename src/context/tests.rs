use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::summariser::summarise_offline;
use super::*;
use crate::config::ContextSettings;
use crate::domain::{Action, ActionKind, ProductId, SessionId, UserId};

fn settings() -> ContextSettings {
    ContextSettings {
        lookback_seconds: 300.0,
        max_actions: 30,
        summary_threshold: 10,
        summary_retry_seconds: 30.0,
        max_sessions: 1000,
        max_users: 1000,
        max_sessions_per_user: 20,
        idle_seconds: 3600,
        sessions_per_answer: 3,
        dedupe_capacity: 1000,
        dedupe_ttl_seconds: 3600,
    }
}

fn click(user: &str, session: &str, label: &str) -> Action {
    Action {
        kind: ActionKind::Click,
        title: format!("Click '{label}'"),
        phrase: format!("clicked '{label}' button on /projects"),
        label: Some(label.to_owned()),
        page: "/projects".to_owned(),
        canonical_url: "https://app.example.com/projects".to_owned(),
        raw_url: "https://app.example.com/projects".to_owned(),
        timestamp: Utc::now(),
        session_id: SessionId::parse(session).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        email: Some(format!("{user}@example.com")),
    }
}

fn product(id: &str) -> ProductId {
    ProductId::parse(id).unwrap()
}

fn offline_store(settings: &ContextSettings) -> ContextStore {
    ContextStore::new(
        settings,
        Arc::new(OfflineSummariser),
        TaskTracker::new(),
        crate::metrics::Metrics::new(),
    )
}

fn labels(view: &SessionView) -> Vec<String> {
    view.actions
        .iter()
        .map(|(_, a)| a.label.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn only_the_newest_max_actions_are_kept() {
    let s = ContextSettings {
        max_actions: 3,
        summary_threshold: 100,
        ..settings()
    };
    let store = offline_store(&s);
    let p = product("acme");
    store.record(
        &p,
        (0..5).map(|i| click("u", "s", &format!("b{i}"))).collect(),
    );
    let view = store.session(&p, &SessionId::parse("s").unwrap()).unwrap();
    assert_eq!(labels(&view), ["b2", "b3", "b4"]);
    let indexes: Vec<u64> = view.actions.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, [2, 3, 4], "indexes keep counting across trims");
}

#[tokio::test(start_paused = true)]
async fn reads_see_only_the_lookback_window() {
    let s = ContextSettings {
        lookback_seconds: 60.0,
        summary_threshold: 100,
        ..settings()
    };
    let store = offline_store(&s);
    let p = product("acme");
    store.record(&p, vec![click("u", "s", "old")]);
    tokio::time::advance(Duration::from_secs(45)).await;
    store.record(&p, vec![click("u", "s", "new")]);
    let user = UserId::parse("u").unwrap();
    assert_eq!(
        labels(&store.user_activity(&p, &user).sessions[0]),
        ["old", "new"]
    );

    tokio::time::advance(Duration::from_secs(20)).await;
    let activity = store.user_activity(&p, &user);
    assert_eq!(
        labels(&activity.sessions[0]),
        ["new"],
        "65 s old action hidden"
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(
        !store.user_activity(&p, &user).has_activity(),
        "all outside window"
    );
}

#[tokio::test]
async fn user_activity_is_per_product_newest_session_first_with_email() {
    let store = offline_store(&settings());
    store.record(&product("a"), vec![click("u", "s1", "first")]);
    store.record(&product("a"), vec![click("u", "s4", "second")]);
    store.record(&product("b"), vec![click("u", "s2", "other product")]);
    store.record(&product("a"), vec![click("other", "s3", "not mine")]);
    let u = UserId::parse("u").unwrap();
    let activity = store.user_activity(&product("a"), &u);
    let sessions: Vec<&str> = activity
        .sessions
        .iter()
        .map(|s| s.session.as_str())
        .collect();
    assert_eq!(
        sessions,
        ["s4", "s1"],
        "product b's session is not a's user's"
    );
    assert_eq!(activity.email.as_deref(), Some("u@example.com"));
    assert_eq!(activity.latest().unwrap().label.as_deref(), Some("second"));
    assert!(!activity.to_text().contains("not mine"));
    assert!(!activity.to_text().contains("other product"));
    let in_b = store.user_activity(&product("b"), &u);
    assert_eq!(in_b.sessions.len(), 1);
    assert_eq!(in_b.sessions[0].session.as_str(), "s2");
}

#[tokio::test]
async fn erasing_a_user_removes_their_sessions_and_index_in_that_product_only() {
    let store = offline_store(&settings());
    store.record(
        &product("a"),
        vec![click("u", "s1", "x"), click("u", "s1", "y")],
    );
    store.record(&product("a"), vec![click("v", "s2", "v's")]);
    store.record(&product("b"), vec![click("u", "s3", "b's u")]);
    let u = UserId::parse("u").unwrap();
    let erased = store.erase_user(&product("a"), &u);
    assert!(erased.user_index);
    assert_eq!(erased.sessions, [SessionId::parse("s1").unwrap()]);
    assert_eq!(erased.actions, 2);
    assert!(!store.user_activity(&product("a"), &u).has_activity());
    assert!(
        store.user_activity(&product("b"), &u).has_activity(),
        "b's user is another person"
    );
    assert!(
        store
            .user_activity(&product("a"), &UserId::parse("v").unwrap())
            .has_activity()
    );
    assert_eq!(
        store.erase_user(&product("a"), &u),
        Erased::default(),
        "nothing left"
    );
}

#[tokio::test]
async fn answers_use_at_most_sessions_per_answer() {
    let store = offline_store(&ContextSettings {
        sessions_per_answer: 2,
        ..settings()
    });
    for i in 0..4 {
        store.record(&product("a"), vec![click("u", &format!("s{i}"), "x")]);
    }
    let activity = store.user_activity(&product("a"), &UserId::parse("u").unwrap());
    let sessions: Vec<&str> = activity
        .sessions
        .iter()
        .map(|s| s.session.as_str())
        .collect();
    assert_eq!(sessions, ["s3", "s2"]);
    assert_eq!(
        store.counts(),
        Counts {
            users: 1,
            sessions: 4
        }
    );
}

#[tokio::test]
async fn retried_deliveries_are_recognised_per_product() {
    let store = offline_store(&settings());
    assert!(store.first_delivery(&product("a"), "uuid-1"));
    assert!(!store.first_delivery(&product("a"), "uuid-1"));
    assert!(
        store.first_delivery(&product("b"), "uuid-1"),
        "other product"
    );
}

/// A summariser that waits for a permit, so a test controls when it finishes.
struct Gated {
    gate: Arc<Semaphore>,
    calls: AtomicUsize,
    fail: bool,
}

#[async_trait]
impl Summariser for Gated {
    async fn summarise(
        &self,
        previous: Option<&str>,
        actions: &[Action],
    ) -> Result<String, SummaryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let permit = self.gate.acquire().await;
        drop(permit);
        if self.fail {
            return Err(SummaryError::Backend("llm down".into()));
        }
        Ok(format!(
            "{} actions after [{}]",
            actions.len(),
            previous.unwrap_or("nothing")
        ))
    }
}

#[tokio::test]
async fn summary_replaces_covered_actions_and_readers_never_see_a_gap() {
    let gate = Arc::new(Semaphore::new(0));
    let summariser = Arc::new(Gated {
        gate: Arc::clone(&gate),
        calls: AtomicUsize::new(0),
        fail: false,
    });
    let tasks = TaskTracker::new();
    let store = ContextStore::new(
        &ContextSettings {
            summary_threshold: 3,
            ..settings()
        },
        summariser.clone(),
        tasks.clone(),
        crate::metrics::Metrics::new(),
    );
    let p = product("acme");
    let sid = SessionId::parse("s").unwrap();

    // A reader hammering the session the whole time.
    let reader_store = store.clone();
    let (p2, sid2) = (p.clone(), sid.clone());
    let reader = tokio::spawn(async move {
        let mut reads = 0usize;
        loop {
            let view = reader_store.session(&p2, &sid2).unwrap();
            assert!(!view.to_text().is_empty(), "reader saw an empty context");
            reads += 1;
            if view.summary.is_some() && view.actions.len() == 1 {
                return reads;
            }
            tokio::task::yield_now().await;
        }
    });

    store.record(
        &p,
        (0..3).map(|i| click("u", "s", &format!("b{i}"))).collect(),
    );
    // While the summary is pending, raw actions stay and new ones add up.
    store.record(&p, vec![click("u", "s", "b3")]);
    let pending = store.session(&p, &sid).unwrap();
    assert!(pending.summary.is_none());
    assert_eq!(pending.actions.len(), 4);

    gate.add_permits(1);
    let reads = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("reader finished")
        .expect("reader did not panic");
    assert!(reads > 0);
    let view = store.session(&p, &sid).unwrap();
    assert_eq!(view.summary.as_deref(), Some("3 actions after [nothing]"));
    assert_eq!(labels(&view), ["b3"], "only the uncovered action stays raw");
    assert_eq!(
        summariser.calls.load(Ordering::SeqCst),
        1,
        "one summary at a time"
    );

    // The next summary is built on the previous one.
    store.record(
        &p,
        (4..6).map(|i| click("u", "s", &format!("b{i}"))).collect(),
    );
    gate.add_permits(1);
    tasks.close();
    tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .expect("summary task finished");
    let view = store.session(&p, &sid).unwrap();
    assert_eq!(
        view.summary.as_deref(),
        Some("3 actions after [3 actions after [nothing]]")
    );
    assert!(view.actions.is_empty());
    assert_eq!(view.latest.unwrap().label.as_deref(), Some("b5"));
    assert!(
        store
            .session(&p, &sid)
            .unwrap()
            .to_text()
            .contains("Latest action: Clicked 'b5'")
    );
}

#[tokio::test]
async fn a_failed_summary_keeps_the_raw_actions() {
    let gate = Arc::new(Semaphore::new(10));
    let tasks = TaskTracker::new();
    let store = ContextStore::new(
        &ContextSettings {
            summary_threshold: 2,
            ..settings()
        },
        Arc::new(Gated {
            gate,
            calls: AtomicUsize::new(0),
            fail: true,
        }),
        tasks.clone(),
        crate::metrics::Metrics::new(),
    );
    let p = product("acme");
    store.record(&p, vec![click("u", "s", "a"), click("u", "s", "b")]);
    tasks.close();
    tokio::time::timeout(Duration::from_secs(5), tasks.wait())
        .await
        .expect("summary task finished");
    let view = store.session(&p, &SessionId::parse("s").unwrap()).unwrap();
    assert!(view.summary.is_none());
    assert_eq!(labels(&view), ["a", "b"]);
}

#[test]
fn offline_summary_names_pages_counts_and_last_action() {
    let actions = vec![
        click("u", "s", "Edit"),
        click("u", "s", "Save changes"),
        click("u", "s", "Edit"),
        click("u", "s", "Save changes"),
    ];
    let summary = summarise_offline(None, &actions);
    assert_eq!(
        summary,
        "Visited /projects. Clicked 'Edit' 2 times and 'Save changes' 2 times. \
         Last action: clicked 'Save changes' button on /projects."
    );
    let next = summarise_offline(Some(&summary), &actions[..1]);
    assert!(
        next.starts_with("Visited /projects. Clicked 'Edit' once."),
        "{next}"
    );
    assert!(next.contains("Earlier: Visited /projects."), "{next}");
    let long_previous = "x".repeat(5000);
    assert!(
        summarise_offline(Some(&long_previous), &actions)
            .chars()
            .count()
            <= 600
    );
}

#[tokio::test]
async fn a_submit_right_after_a_click_on_the_same_page_is_folded_into_it() {
    let store = offline_store(&settings());
    let p = product("acme");
    let submit = |offset_ms: i64| Action {
        kind: ActionKind::Submit,
        phrase: "submitted 'edit-project' form on /projects".into(),
        timestamp: click("u", "s", "x").timestamp + chrono::Duration::milliseconds(offset_ms),
        ..click("u", "s", "edit-project")
    };
    store.record(&p, vec![click("u", "s", "Save changes"), submit(300)]);
    let view = store.session(&p, &SessionId::parse("s").unwrap()).unwrap();
    assert_eq!(
        labels(&view),
        ["Save changes"],
        "the submit was the click's effect"
    );
    store.record(&p, vec![submit(60_000)]);
    let view = store.session(&p, &SessionId::parse("s").unwrap()).unwrap();
    assert_eq!(view.actions.len(), 2, "a later submit is its own step");
}

#[tokio::test(start_paused = true)]
async fn a_failing_summariser_is_retried_with_backoff_not_on_every_action() {
    let gate = Arc::new(Semaphore::new(1000));
    let tasks = TaskTracker::new();
    let summariser = Arc::new(Gated {
        gate,
        calls: AtomicUsize::new(0),
        fail: true,
    });
    let store = ContextStore::new(
        &ContextSettings {
            summary_threshold: 2,
            summary_retry_seconds: 30.0,
            ..settings()
        },
        summariser.clone(),
        tasks.clone(),
        crate::metrics::Metrics::new(),
    );
    let p = product("acme");
    let calls = || summariser.calls.load(Ordering::SeqCst);
    let settle = || async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };
    store.record(&p, vec![click("u", "s", "a"), click("u", "s", "b")]);
    settle().await;
    assert_eq!(calls(), 1);
    for label in ["c", "d", "e"] {
        store.record(&p, vec![click("u", "s", label)]);
        settle().await;
    }
    assert_eq!(calls(), 1, "no new call while backing off");
    tokio::time::advance(Duration::from_secs(31)).await;
    store.record(&p, vec![click("u", "s", "f")]);
    settle().await;
    assert_eq!(calls(), 2, "tried again after 30 s");
    // The second failure doubles the wait.
    tokio::time::advance(Duration::from_secs(31)).await;
    store.record(&p, vec![click("u", "s", "g")]);
    settle().await;
    assert_eq!(calls(), 2, "still backing off at 31 of 60 s");
    tokio::time::advance(Duration::from_secs(30)).await;
    store.record(&p, vec![click("u", "s", "h")]);
    settle().await;
    assert_eq!(calls(), 3);
    let view = store.session(&p, &SessionId::parse("s").unwrap()).unwrap();
    assert!(view.summary.is_none());
    assert_eq!(labels(&view).len(), 8, "every raw action kept");
}

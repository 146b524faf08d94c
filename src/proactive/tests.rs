use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex as PlMutex;
use tokio_util::task::TaskTracker;

use super::*;
use crate::config::{QuickReplySettings, Settings, TriggerRule};
use crate::context::OfflineSummariser;
use crate::domain::{Action, ActionKind};

#[derive(Default)]
struct Recorder {
    offers: PlMutex<Vec<(UserId, BotMessage)>>,
}

#[async_trait]
impl Notifier for Recorder {
    async fn offer(
        &self,
        _product: &ProductId,
        user: &UserId,
        _response: Option<&str>,
        message: &BotMessage,
    ) -> Delivery {
        self.offers.lock().push((user.clone(), message.clone()));
        Delivery::Delivered(1)
    }
}

fn dwell_only() -> (ProactiveSettings, Settings) {
    let settings = Settings::load_with_env(None, |_| None).unwrap();
    let mut proactive = settings.proactive.clone();
    proactive.triggers = vec![TriggerSettings {
        id: "stuck".into(),
        rule: TriggerRule::Dwell {
            dwell_seconds: 90.0,
            max_actions: 5,
        },
        response: None,
        message: "Still on this page — want a quick tip?".into(),
        quick_replies: vec![QuickReplySettings {
            title: "Yes".into(),
            payload: "/ask_help_current_page".into(),
        }],
        interaction_timeout_seconds: None,
        cooldown_seconds: None,
    }];
    (proactive, settings)
}

fn pageview(user: &str) -> Action {
    Action {
        kind: ActionKind::Pageview,
        title: "View /reports".into(),
        phrase: "viewed /reports".into(),
        label: None,
        page: "/reports".into(),
        canonical_url: "https://x.io/reports".into(),
        raw_url: "https://x.io/reports".into(),
        timestamp: chrono::Utc::now(),
        session_id: SessionId::parse("s1").unwrap(),
        user_id: UserId::parse(user).unwrap(),
        email: None,
    }
}

#[tokio::test(start_paused = true)]
async fn dwell_fires_on_a_tick_once_the_user_has_idled_long_enough() {
    let (proactive_settings, settings) = dwell_only();
    let store = ContextStore::new(
        &settings.context,
        Arc::new(OfflineSummariser),
        TaskTracker::new(),
        Metrics::new(),
    );
    let engine = Proactive::new(&proactive_settings, store.clone(), Metrics::new());
    let recorder = Arc::new(Recorder::default());
    engine.set_notifier(recorder.clone());
    let product = ProductId::parse("demo").unwrap();

    store.record(&product, vec![pageview("u")]);
    let on_batch = engine
        .on_actions(&product, &[SessionId::parse("s1").unwrap()])
        .await;
    assert_eq!(
        on_batch,
        [Outcome::NoMatch],
        "dwell is not judged on new actions"
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        engine.tick().await,
        [Outcome::NoMatch],
        "60 s is not yet 90 s"
    );

    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        engine.tick().await,
        [Outcome::Fired {
            trigger: "stuck".into()
        }]
    );
    let offers = recorder.offers.lock().clone();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].0.as_str(), "u");
    assert_eq!(
        offers[0].1.as_text(),
        Some("Still on this page — want a quick tip?")
    );

    // Still idle on the next tick: the open offer blocks a repeat.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(matches!(
        engine.tick().await[0],
        Outcome::SuppressedByState { .. }
    ));
    // After the interaction times out (60 s), the cooldown (120 s) holds.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(matches!(
        engine.tick().await[0],
        Outcome::SuppressedByCooldown { .. }
    ));
    assert_eq!(recorder.offers.lock().len(), 1);
}

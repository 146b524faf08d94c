//! Trigger rules over a session's recent actions. Pure: the caller passes the
//! actions (oldest first) and how long the session has been idle.

use std::time::Duration;

use crate::config::TriggerRule;
use crate::domain::Action;

/// What a trigger looks at.
#[derive(Debug, Clone, Copy)]
pub struct Activity<'a> {
    /// Recent actions of one session, oldest first.
    pub actions: &'a [&'a Action],
    /// Time since the session's newest action arrived.
    pub idle_for: Duration,
}

/// Whether `rule` matches. Dwell matches only when asked on a tick (`on_tick`);
/// the others only when new actions arrive.
pub fn matches(rule: &TriggerRule, activity: Activity<'_>, on_tick: bool) -> bool {
    match rule {
        TriggerRule::RepeatedAction {
            min_count,
            within_seconds,
            action_type,
            labels,
        } => {
            !on_tick
                && repeated(
                    activity.actions,
                    *min_count,
                    *within_seconds,
                    action_type.as_deref(),
                    labels,
                )
        }
        TriggerRule::PagePingPong { within_seconds } => {
            !on_tick && ping_pong(activity.actions, *within_seconds)
        }
        TriggerRule::Dwell {
            dwell_seconds,
            max_actions,
        } => on_tick && dwell(activity, *dwell_seconds, *max_actions),
    }
}

/// Actions no older than `within_seconds` before the newest one (event time, so
/// a client's clock skew does not matter).
fn window<'a>(actions: &'a [&'a Action], within_seconds: f64) -> &'a [&'a Action] {
    let Some(newest) = actions.last() else {
        return actions;
    };
    let within = chrono::Duration::milliseconds((within_seconds * 1000.0) as i64);
    let start = actions
        .iter()
        .position(|a| newest.timestamp - a.timestamp <= within)
        .unwrap_or(actions.len());
    &actions[start..]
}

/// The newest action, repeated (same type, label and page) `min_count` times.
fn repeated(
    actions: &[&Action],
    min_count: usize,
    within_seconds: f64,
    action_type: Option<&str>,
    labels: &[String],
) -> bool {
    let Some(newest) = actions.last() else {
        return false;
    };
    if action_type.is_some_and(|t| t != newest.kind.as_str()) {
        return false;
    }
    if !labels.is_empty() && !newest.label.as_ref().is_some_and(|l| labels.contains(l)) {
        return false;
    }
    let same =
        |a: &&&Action| a.kind == newest.kind && a.label == newest.label && a.page == newest.page;
    window(actions, within_seconds).iter().filter(same).count() >= min_count
}

/// A → B → A, or at least three pages with a revisit, within the window.
fn ping_pong(actions: &[&Action], within_seconds: f64) -> bool {
    let mut pages: Vec<&str> = Vec::new();
    for action in window(actions, within_seconds) {
        if pages.last() != Some(&action.page.as_str()) {
            pages.push(&action.page);
        }
    }
    let back_and_forth = pages.windows(3).any(|w| w[0] == w[2] && w[0] != w[1]);
    let mut distinct = pages.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let revisit = distinct.len() < pages.len();
    back_and_forth || (distinct.len() >= 3 && revisit)
}

/// Idle on one page long enough, having done little there.
fn dwell(activity: Activity<'_>, dwell_seconds: f64, max_actions: usize) -> bool {
    let Some(newest) = activity.actions.last() else {
        return false;
    };
    let on_page = activity
        .actions
        .iter()
        .rev()
        .take_while(|a| a.page == newest.page)
        .count();
    activity.idle_for >= Duration::from_secs_f64(dwell_seconds) && on_page <= max_actions
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{ActionKind, SessionId, UserId};

    fn act(kind: ActionKind, label: &str, page: &str, second: i64) -> Action {
        Action {
            kind,
            title: String::new(),
            phrase: String::new(),
            label: Some(label.to_owned()),
            page: page.to_owned(),
            canonical_url: page.to_owned(),
            raw_url: page.to_owned(),
            timestamp: Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap(),
            session_id: SessionId::parse("s").unwrap(),
            user_id: UserId::parse("u").unwrap(),
            email: None,
        }
    }

    fn on_actions(rule: &TriggerRule, actions: &[Action]) -> bool {
        let actions: Vec<&Action> = actions.iter().collect();
        matches(
            rule,
            Activity {
                actions: &actions,
                idle_for: Duration::ZERO,
            },
            false,
        )
    }

    const EDITS: TriggerRule = TriggerRule::RepeatedAction {
        min_count: 3,
        within_seconds: 60.0,
        action_type: None,
        labels: Vec::new(),
    };

    #[test]
    fn repeated_action_needs_the_same_type_label_and_page_n_times_in_the_window() {
        let save = |s| act(ActionKind::Click, "Save changes", "/projects", s);
        assert!(!on_actions(&EDITS, &[save(0), save(10)]), "only two");
        assert!(on_actions(&EDITS, &[save(0), save(10), save(20)]));
        assert!(
            !on_actions(&EDITS, &[save(0), save(10), save(100)]),
            "first one is outside 60 s"
        );
        let other_page = act(ActionKind::Click, "Save changes", "/settings", 20);
        assert!(
            !on_actions(&EDITS, &[save(0), save(10), other_page]),
            "different page"
        );
        let filtered = TriggerRule::RepeatedAction {
            min_count: 3,
            within_seconds: 60.0,
            action_type: Some("click".into()),
            labels: vec!["Edit".into()],
        };
        assert!(
            !on_actions(&filtered, &[save(0), save(10), save(20)]),
            "label not in the list"
        );
        let edit = |s| act(ActionKind::Click, "Edit", "/projects", s);
        assert!(on_actions(
            &filtered,
            &[edit(0), save(5), edit(10), save(15), edit(20)]
        ));
    }

    #[test]
    fn ping_pong_sees_back_and_forth_or_wandering_with_a_revisit() {
        let rule = TriggerRule::PagePingPong {
            within_seconds: 120.0,
        };
        let view = |p: &str, s| act(ActionKind::Pageview, p, p, s);
        assert!(on_actions(
            &rule,
            &[view("/a", 0), view("/b", 5), view("/a", 10)]
        ));
        assert!(!on_actions(
            &rule,
            &[view("/a", 0), view("/a", 5), view("/b", 10)]
        ));
        assert!(
            !on_actions(&rule, &[view("/a", 0), view("/b", 5), view("/c", 10)]),
            "no revisit"
        );
        assert!(on_actions(
            &rule,
            &[view("/a", 0), view("/b", 5), view("/c", 10), view("/b", 15)]
        ));
        assert!(
            !on_actions(&rule, &[view("/a", 0), view("/b", 5), view("/a", 500)]),
            "too slow"
        );
    }

    #[test]
    fn dwell_fires_only_on_ticks_after_enough_idle_time() {
        let rule = TriggerRule::Dwell {
            dwell_seconds: 60.0,
            max_actions: 2,
        };
        let view = act(ActionKind::Pageview, "/p", "/p", 0);
        let actions = [&view];
        let idle = |secs| Activity {
            actions: &actions,
            idle_for: Duration::from_secs(secs),
        };
        assert!(!matches(&rule, idle(30), true));
        assert!(matches(&rule, idle(61), true));
        assert!(!matches(&rule, idle(61), false), "not on new actions");
        let busy: Vec<Action> = (0..3)
            .map(|s| act(ActionKind::Click, "x", "/p", s))
            .collect();
        let busy: Vec<&Action> = busy.iter().collect();
        assert!(!matches(
            &rule,
            Activity {
                actions: &busy,
                idle_for: Duration::from_secs(61)
            },
            true
        ));
    }
}

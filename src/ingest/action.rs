//! Event → action: decides what an event means to a person and words it
//! ("clicked 'Save changes' button on /projects/:id"). Low-signal events are ignored.

use chrono::{DateTime, Utc};

use super::canonical_url::canonicalise;
use super::elements_chain::Element;
use super::event::Event;
use crate::domain::{Action, ActionKind};

/// Longest label kept in an action; long button texts are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 60;

/// What an event became.
#[derive(Debug, Clone)]
pub enum Classified {
    Action(Box<Action>),
    /// Bookkeeping events (`$identify`, `$pageleave`, …) carry no user intent.
    Ignored,
}

/// PostHog's own `$` events other than pageviews and clicks are bookkeeping
/// (`$identify`, `$set`, `$pageleave`, `$feature_flag_called`, `$web_vitals`, …):
/// they say nothing about what the user did. Custom events (no `$`) always count.
fn is_low_signal(name: &str) -> bool {
    name.starts_with('$') && !matches!(name, "$pageview" | "$autocapture" | "$rageclick")
}

/// Classifies an event; `received_at` stands in for a missing timestamp.
pub fn classify(event: &Event, received_at: DateTime<Utc>) -> Classified {
    if is_low_signal(&event.name) {
        return Classified::Ignored;
    }
    let url = canonicalise(&event.current_url);
    let page = url.path.clone();
    let target = event.elements.first();
    let label = label_for(event);
    let quoted = label.as_deref().map(|l| format!("'{l}'"));

    let (kind, title, phrase) = match event.name.as_str() {
        "$pageview" => {
            let title = match &event.page_title {
                Some(t) => format!("View '{}'", truncate(t)),
                None => format!("View {page}"),
            };
            (ActionKind::Pageview, title, format!("viewed {page}"))
        }
        "$autocapture" | "$rageclick" => {
            let noun = target.and_then(noun_for);
            let what = match (&quoted, noun) {
                (Some(q), Some(n)) => format!("{q} {n}"),
                (Some(q), None) => q.clone(),
                (None, Some(n)) => format!("a {n}"),
                (None, None) => "an element".to_owned(),
            };
            let short = quoted.clone().unwrap_or_else(|| what.clone());
            let (kind, verb, title_verb) = if event.name == "$rageclick" {
                (ActionKind::Rageclick, "rage-clicked", "Rage-click")
            } else {
                match event.event_type.as_deref() {
                    Some("submit") => (ActionKind::Submit, "submitted", "Submit"),
                    Some("change") => (ActionKind::Type, "changed", "Change"),
                    _ => (ActionKind::Click, "clicked", "Click"),
                }
            };
            (
                kind,
                format!("{title_verb} {short}"),
                format!("{verb} {what} on {page}"),
            )
        }
        custom => {
            let human = humanise(custom);
            (
                ActionKind::Custom(custom.to_owned()),
                human.clone(),
                format!("triggered '{human}' on {page}"),
            )
        }
    };

    Classified::Action(Box::new(Action {
        kind,
        title,
        phrase,
        label,
        page,
        canonical_url: url.url,
        raw_url: event.current_url.clone(),
        timestamp: event.timestamp.unwrap_or(received_at),
        session_id: event.session_id.clone(),
        user_id: event.user_id.clone(),
        email: event.email.clone(),
    }))
}

/// Label precedence: `$el_text`, the first `text=` in the chain (target first),
/// then the target's aria-label, name, placeholder, id, and finally its tag.
fn label_for(event: &Event) -> Option<String> {
    let target = event.elements.first();
    event
        .el_text
        .as_deref()
        .or_else(|| event.elements.iter().find_map(Element::text))
        .or_else(|| target.and_then(Element::aria_label))
        .or_else(|| target.and_then(Element::name))
        .or_else(|| target.and_then(Element::placeholder))
        .or_else(|| target.and_then(Element::id))
        .map(truncate)
        .filter(|l| !l.is_empty())
}

/// What to call the target: "button", "link", "field", "form".
fn noun_for(element: &Element) -> Option<&'static str> {
    match element.tag() {
        "button" => Some("button"),
        "a" => Some("link"),
        "input" => match element.input_type() {
            Some("submit" | "button" | "reset") => Some("button"),
            Some("checkbox") => Some("checkbox"),
            Some("radio") => Some("option"),
            _ => Some("field"),
        },
        "textarea" => Some("field"),
        "select" => Some("dropdown"),
        "form" => Some("form"),
        _ => None,
    }
}

/// Collapses whitespace and cuts to [`MAX_LABEL_CHARS`] on a character boundary.
fn truncate(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_LABEL_CHARS {
        return collapsed;
    }
    let cut: String = collapsed.chars().take(MAX_LABEL_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// `upgrade_modal_opened` → `Upgrade modal opened`.
fn humanise(name: &str) -> String {
    let spaced = name.replace(['_', '-', '.'], " ");
    let spaced = truncate(&spaced);
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_body;

    fn action(body: &str) -> Action {
        let events = parse_body(body.as_bytes()).unwrap();
        match classify(&events[0], Utc::now()) {
            Classified::Action(a) => *a,
            Classified::Ignored => panic!("expected an action for {body}"),
        }
    }

    #[test]
    fn autocapture_click_names_label_noun_and_canonical_page() {
        let a = action(include_str!(
            "../../tests/fixtures/posthog-webhook-autocapture.json"
        ));
        assert_eq!(a.kind, ActionKind::Click);
        assert_eq!(
            a.description(),
            "Clicked 'Save changes' button on /projects/:id"
        );
        assert_eq!(a.title, "Click 'Save changes'");
        assert_eq!(a.canonical_url, "https://app.example.com/projects/:id");
        assert_eq!(a.email.as_deref(), Some("casey.jones@example.com"));
        assert_eq!(
            a.line(3),
            "[3] click: Clicked 'Save changes' button on /projects/:id \u{2014} https://app.example.com/projects/:id"
        );
    }

    #[test]
    fn flat_destination_body_uses_its_button_text() {
        let a = action(include_str!(
            "../../tests/fixtures/autoplay-destination-flat.json"
        ));
        assert_eq!(a.description(), "Clicked 'Add Project' button on /projects");
    }

    #[test]
    fn label_falls_back_through_chain_text_aria_name_id_tag() {
        let cases = [
            (
                r#"button:text="From chain""#,
                "Clicked 'From chain' button on /p",
            ),
            (
                r#"svg:nth-child="1";button:text="Parent text""#,
                "Clicked 'Parent text' on /p",
            ),
            (
                r#"input:attr__aria-label="Priority"attr__name="prio""#,
                "Clicked 'Priority' field on /p",
            ),
            (r#"input:attr__name="prio""#, "Clicked 'prio' field on /p"),
            (r#"div:attr__id="card-7""#, "Clicked 'card-7' on /p"),
            (r#"a:nth-child="1""#, "Clicked a link on /p"),
            ("", "Clicked an element on /p"),
        ];
        for (chain, expected) in cases {
            let body = serde_json::json!({
                "event": "$autocapture", "distinct_id": "u", "elements_chain": chain,
                "properties": {"$current_url": "https://x.io/p", "$event_type": "click"}
            });
            assert_eq!(action(&body.to_string()).description(), expected, "{chain}");
        }
    }

    #[test]
    fn change_submit_rageclick_pageview_and_custom_events_are_worded() {
        let cases = [
            (
                serde_json::json!({"event":"$autocapture","distinct_id":"u","elements_chain":"input:attr__name=\"priority\"","properties":{"$event_type":"change","$current_url":"https://x.io/projects/9"}}),
                "type",
                "Changed 'priority' field on /projects/:id",
            ),
            (
                serde_json::json!({"event":"$autocapture","distinct_id":"u","elements_chain":"form:attr__id=\"edit-project\"","properties":{"$event_type":"submit","$current_url":"https://x.io/projects"}}),
                "submit",
                "Submitted 'edit-project' form on /projects",
            ),
            (
                serde_json::json!({"event":"$rageclick","distinct_id":"u","properties":{"$el_text":"Export","$current_url":"https://x.io/reports"}}),
                "rageclick",
                "Rage-clicked 'Export' on /reports",
            ),
            (
                serde_json::json!({"event":"$pageview","distinct_id":"u","properties":{"$current_url":"https://x.io/projects?x=1","title":"Projects"}}),
                "pageview",
                "Viewed /projects",
            ),
            (
                serde_json::json!({"event":"upgrade_modal_opened","distinct_id":"u","properties":{"$current_url":"https://x.io/settings/billing"}}),
                "upgrade_modal_opened",
                "Triggered 'Upgrade modal opened' on /settings/billing",
            ),
        ];
        for (body, kind, expected) in cases {
            let a = action(&body.to_string());
            assert_eq!(a.kind.as_str(), kind, "{body}");
            assert_eq!(a.description(), expected, "{body}");
        }
    }

    #[test]
    fn long_labels_are_cut_with_an_ellipsis() {
        let body = serde_json::json!({"event":"$autocapture","distinct_id":"u","properties":{"$el_text": "word ".repeat(100), "$current_url":"/p"}});
        let label = action(&body.to_string()).label.unwrap();
        assert!(label.chars().count() <= MAX_LABEL_CHARS, "{label}");
        assert!(label.ends_with('…'));
    }

    #[test]
    fn low_signal_events_are_ignored() {
        for name in [
            "$identify",
            "$pageleave",
            "$feature_flag_called",
            "$web_vitals",
            "$set",
            "$groupidentify",
            "$something_new",
        ] {
            let body = serde_json::json!({"event": name, "distinct_id": "u"});
            let events = parse_body(body.to_string().as_bytes()).unwrap();
            assert!(
                matches!(classify(&events[0], Utc::now()), Classified::Ignored),
                "{name}"
            );
        }
    }
}

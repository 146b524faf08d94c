//! The offline responder: template answers grounded in the user's activity, used
//! when no LLM is configured (or it fails). It picks up from the last action and
//! names real labels, and never recites the whole log.

use std::sync::LazyLock;

use regex::Regex;

use crate::context::UserActivity;
use crate::domain::Action;
use crate::knowledge::Excerpt;

/// Which built-in action is answering (from the intent's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// "What did I just do?"
    Recap,
    /// "Help me with this page."
    CurrentPage,
    /// Anything else.
    Other,
}

/// Earlier actions mentioned after the latest one, at most.
const EARLIER_MENTIONED: usize = 2;

#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineResponder;

impl OfflineResponder {
    /// A reply to `query`; `greet` is the first name when this is the first reply
    /// of the conversation.
    pub fn reply(&self, topic: Topic, activity: &UserActivity, greet: Option<&str>) -> String {
        let body = match activity.latest() {
            None => no_activity(topic),
            Some(latest) => match topic {
                Topic::Recap => recap(latest, activity),
                Topic::CurrentPage => current_page(latest),
                Topic::Other => other(latest),
            },
        };
        match greet {
            Some(name) => format!("Hi {name}! {body}"),
            None => body,
        }
    }
}

/// Said when the product has help pages and none of them answers the question.
pub const NOT_IN_DOCS: &str = "I couldn't find anything about that in the help pages, and I'd \
    rather not guess. I can tell you what you just did, or help with the page you're on.";

impl OfflineResponder {
    /// An answer from the best help section, picking up after the user's
    /// last action when it is one of the section's steps; cites the section.
    pub fn from_docs(
        &self,
        excerpt: &Excerpt,
        latest: Option<&Action>,
        greet: Option<&str>,
    ) -> String {
        let label = latest.and_then(|a| a.label.as_deref());
        let body = label
            .and_then(|label| steps_after(&excerpt.text, label))
            .unwrap_or_else(|| excerpt.text.trim().to_owned());
        let text = format!(
            "From the help pages, **{}**:\n\n{body}\n\n{}",
            excerpt.title,
            sources(std::slice::from_ref(excerpt))
        );
        match greet {
            Some(name) => format!("Hi {name}! {text}"),
            None => text,
        }
    }
}

/// `Sources: [title](url), …` (a title alone when a page has no URL).
pub fn sources(excerpts: &[Excerpt]) -> String {
    // One citation per page: sections of one page share its URL.
    let mut pages: Vec<&Excerpt> = Vec::new();
    for e in excerpts {
        let page = |e: &Excerpt| e.url.split('#').next().unwrap_or_default().to_owned();
        if e.url.is_empty() || !pages.iter().any(|p| page(p) == page(e)) {
            pages.push(e);
        }
    }
    let cited: Vec<String> = pages
        .into_iter()
        .map(|e| {
            if e.url.is_empty() {
                e.title.clone()
            } else {
                format!("[{}]({})", e.title, e.url)
            }
        })
        .collect();
    format!(
        "Source{}: {}",
        if cited.len() == 1 { "" } else { "s" },
        cited.join(", ")
    )
}

/// The steps after the last numbered step that names `label` (`'Edit'`),
/// introduced as what comes next; None when no step names it, or it is the last.
fn steps_after(text: &str, label: &str) -> Option<String> {
    #[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
    static STEP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\s*\d+[.)]\s+").expect("a valid literal regex"));
    #[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
    static QUOTED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"'([^']+)'").expect("valid regex"));
    let lines: Vec<&str> = text.lines().collect();
    let steps: Vec<usize> = (0..lines.len())
        .filter(|&i| STEP.is_match(lines[i]))
        .collect();
    let done = steps.iter().rposition(|&i| {
        QUOTED
            .captures_iter(lines[i])
            .any(|c| c[1].trim().eq_ignore_ascii_case(label.trim()))
    })?;
    let next = *steps.get(done + 1)?;
    // The rest of that list: consecutive steps from `next`.
    let mut rest = Vec::new();
    for &i in &steps[done + 1..] {
        if rest.is_empty() || i == next + rest.len() {
            rest.push(STEP.replace(lines[i], "").into_owned());
        } else {
            break;
        }
    }
    let numbered: Vec<String> = rest
        .iter()
        .enumerate()
        .map(|(n, step)| format!("{}. {step}", n + 1))
        .collect();
    Some(format!(
        "You've already clicked '{label}', so from here:\n{}",
        numbered.join("\n")
    ))
}

fn no_activity(topic: Topic) -> String {
    match topic {
        Topic::CurrentPage => "I don't know which page you're on yet. Click around in the app, \
             then ask me again and I'll help with what's in front of you."
            .to_owned(),
        _ => "I haven't seen any activity from you in the last few minutes. Click around in \
             the app, then ask me again."
            .to_owned(),
    }
}

fn recap(latest: &Action, activity: &UserActivity) -> String {
    let mut text = format!("You just {}.", latest.phrase);
    let latest_description = latest.description();
    let mut earlier: Vec<&str> = Vec::new();
    for action in activity.recent() {
        if earlier.len() == EARLIER_MENTIONED {
            break;
        }
        if action.description() != latest_description && !earlier.contains(&action.phrase.as_str())
        {
            earlier.push(&action.phrase);
        }
    }
    match earlier.as_slice() {
        [] => {
            if let Some(summary) = activity.sessions.iter().find_map(|s| s.summary.as_deref()) {
                text.push_str(&format!(" Overall: {summary}"));
            }
        }
        [one] => text.push_str(&format!(" Before that you {one}.")),
        [one, two, ..] => text.push_str(&format!(" Before that you {one}, and {two}.")),
    }
    text
}

fn current_page(latest: &Action) -> String {
    format!(
        "You're on {page} and you just {phrase}. Carry on from there: the next step is usually \
         on the same screen. Tell me what you're trying to get done and I'll point you to it.",
        page = latest.page,
        phrase = latest.phrase,
    )
}

fn other(latest: &Action) -> String {
    format!(
        "You just {phrase}. I'm answering without a language model right now, so I can only \
         speak to what I've seen you do: ask me \"what did I just do?\" for a recap, or for \
         help with {page}.",
        phrase = latest.phrase,
        page = latest.page,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docs_answer_picks_up_after_the_last_action_and_cites_its_source() {
        let excerpt = Excerpt {
            title: "Priority \u{2014} Change it".into(),
            url: "https://acme.example.com/help/change-priority#change-it".into(),
            text: "1. Click 'Projects'.\n2. In the row, click 'Edit'.\n3. Open 'Priority'.\n4. Click 'Save changes'.\n\nDone.".into(),
            score: 1.0,
        };
        let steps = super::steps_after(&excerpt.text, "edit").unwrap();
        assert_eq!(
            steps,
            "You've already clicked 'edit', so from here:\n1. Open 'Priority'.\n2. Click 'Save changes'."
        );
        assert_eq!(
            super::steps_after(&excerpt.text, "Save changes"),
            None,
            "last step"
        );
        assert_eq!(super::steps_after(&excerpt.text, "Archive"), None);
        let answer = OfflineResponder.from_docs(&excerpt, None, Some("Casey"));
        assert!(answer.starts_with("Hi Casey! From the help pages, **Priority \u{2014} Change it**:\n\n1. Click 'Projects'."), "{answer}");
        assert!(answer.ends_with("Source: [Priority \u{2014} Change it](https://acme.example.com/help/change-priority#change-it)"), "{answer}");
    }

    #[test]
    fn without_activity_the_reply_says_so_and_greets_once_given() {
        let reply = OfflineResponder.reply(Topic::Recap, &UserActivity::default(), Some("Casey"));
        assert!(
            reply.starts_with("Hi Casey! I haven't seen any activity"),
            "{reply}"
        );
    }
}

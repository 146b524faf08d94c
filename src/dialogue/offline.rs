//! The offline responder: template answers grounded in the user's activity, used
//! when no LLM is configured (or it fails). It picks up from the last action and
//! names real labels, and never recites the whole log.

use crate::context::UserActivity;
use crate::domain::Action;

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
    fn without_activity_the_reply_says_so_and_greets_once_given() {
        let reply = OfflineResponder.reply(Topic::Recap, &UserActivity::default(), Some("Casey"));
        assert!(
            reply.starts_with("Hi Casey! I haven't seen any activity"),
            "{reply}"
        );
    }
}

//! Rolling summaries of a session: the trait the store calls, and the offline
//! summariser used when no LLM is configured (deterministic, no network).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{Action, ActionKind};

/// Longest summary the offline summariser produces; older text is cut first.
const MAX_SUMMARY_CHARS: usize = 600;

/// Why a summary could not be made. The store keeps the raw actions then.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The backend (an LLM) failed or answered with nothing usable.
    #[error("summariser backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Turns a previous summary plus new actions into a new summary.
#[async_trait]
pub trait Summariser: Send + Sync {
    async fn summarise(
        &self,
        previous: Option<&str>,
        actions: &[Action],
    ) -> Result<String, SummaryError>;
}

/// Template summary: pages visited, what was clicked how often, the last action.
#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineSummariser;

#[async_trait]
impl Summariser for OfflineSummariser {
    async fn summarise(
        &self,
        previous: Option<&str>,
        actions: &[Action],
    ) -> Result<String, SummaryError> {
        Ok(summarise_offline(previous, actions))
    }
}

/// The offline summary, as a plain function so it can be reused and tested.
pub fn summarise_offline(previous: Option<&str>, actions: &[Action]) -> String {
    let mut parts = Vec::new();

    let mut pages: Vec<&str> = Vec::new();
    for action in actions {
        if !pages.contains(&action.page.as_str()) {
            pages.push(&action.page);
        }
    }
    if !pages.is_empty() {
        parts.push(format!("Visited {}.", join_list(&pages)));
    }

    // Counted per label; BTreeMap keeps the wording stable between runs.
    let mut clicks: BTreeMap<&str, usize> = BTreeMap::new();
    for action in actions {
        if matches!(action.kind, ActionKind::Click | ActionKind::Rageclick)
            && let Some(label) = &action.label
        {
            *clicks.entry(label.as_str()).or_default() += 1;
        }
    }
    if !clicks.is_empty() {
        let mut counted: Vec<(&str, usize)> = clicks.into_iter().collect();
        counted.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let items: Vec<String> = counted
            .iter()
            .take(5)
            .map(|(label, n)| match n {
                1 => format!("'{label}' once"),
                n => format!("'{label}' {n} times"),
            })
            .collect();
        parts.push(format!("Clicked {}.", join_list(&items)));
    }

    if let Some(last) = actions.last() {
        parts.push(format!("Last action: {}.", last.phrase));
    }

    let mut summary = parts.join(" ");
    if let Some(previous) = previous.map(str::trim).filter(|p| !p.is_empty()) {
        // Room left for the earlier text: the prefix " Earlier: " and a possible "…".
        let room = MAX_SUMMARY_CHARS.saturating_sub(summary.chars().count() + 11);
        if room > 20 {
            let earlier: String = previous.chars().take(room).collect();
            let ellipsis = if earlier.len() < previous.len() {
                "…"
            } else {
                ""
            };
            summary = format!("{summary} Earlier: {earlier}{ellipsis}");
        }
    }
    summary
}

fn join_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

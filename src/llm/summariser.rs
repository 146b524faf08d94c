//! The rolling summariser backed by the LLM (temperature from settings, 0.2 by
//! default). On failure the store keeps the raw actions.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Completion, LlmClient};
use crate::context::{Summariser, SummaryError};
use crate::domain::Action;

const SYSTEM: &str = "You summarise a user's in-app session for a support copilot. \
Write 2-3 plain sentences: which pages and features they used, what they did, and \
what they seem to be trying to do. Use only labels that appear in the actions. \
No preamble, no lists.";

pub struct LlmSummariser {
    llm: Arc<dyn LlmClient>,
    temperature: f32,
    max_tokens: u32,
}

impl LlmSummariser {
    pub fn new(llm: Arc<dyn LlmClient>, temperature: f32, max_tokens: u32) -> Self {
        Self {
            llm,
            temperature,
            max_tokens,
        }
    }
}

/// The summariser's user message: the previous summary and the new actions.
pub fn summary_prompt(previous: Option<&str>, actions: &[Action]) -> String {
    let lines: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}. {}", i + 1, a.line(i as u64)))
        .collect();
    let mut prompt = String::new();
    if let Some(previous) = previous {
        prompt.push_str(&format!("Summary so far:\n{previous}\n\n"));
    }
    prompt.push_str(&format!("New actions:\n{}\n\nSummary:", lines.join("\n")));
    prompt
}

#[async_trait]
impl Summariser for LlmSummariser {
    async fn summarise(
        &self,
        previous: Option<&str>,
        actions: &[Action],
    ) -> Result<String, SummaryError> {
        self.llm
            .complete(Completion {
                system: SYSTEM.to_owned(),
                user: summary_prompt(previous, actions),
                temperature: self.temperature,
                max_tokens: self.max_tokens,
            })
            .await
            .map_err(|e| SummaryError::Backend(Box::new(e)))
    }
}

//! Language models: the client trait the dialogue calls, its OpenAI-compatible
//! implementation (async-openai), and the LLM summariser (prompts are assembled in `dialogue::prompt`).

pub mod openai;
pub mod summariser;

use async_trait::async_trait;

pub use openai::OpenAiClient;
pub use summariser::LlmSummariser;

/// Why a completion failed. Callers answer politely and log; never surface it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with an error or something that is not a completion.
    #[error("LLM API error: {0}")]
    Api(#[from] async_openai::error::OpenAIError),
    /// No answer within the configured timeout.
    #[error("LLM did not answer within {0} ms")]
    Timeout(u64),
    /// Too many calls in flight: no slot freed up within the timeout.
    #[error("LLM is busy: no call slot within {0} ms")]
    Busy(u64),
    /// A completion with no text in it.
    #[error("LLM returned an empty completion")]
    Empty,
}

/// One chat completion request: a system prompt and a user message.
#[derive(Debug, Clone)]
pub struct Completion {
    pub system: String,
    pub user: String,
    pub temperature: f32,
    pub max_tokens: u32,
}

#[async_trait]
pub trait LlmClient: Send + Sync {
    /// The completion's text, trimmed and non-empty.
    async fn complete(&self, request: Completion) -> Result<String, Error>;
}

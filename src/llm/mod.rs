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

impl Error {
    /// Worth another attempt: a timeout, a 429 or a 5xx (or a connection that
    /// failed before an answer). A bad or empty answer would come back the same.
    pub fn is_retryable(&self) -> bool {
        use async_openai::error::OpenAIError;
        let retryable_status =
            |status: reqwest::StatusCode| status == 429 || status.is_server_error();
        match self {
            Error::Timeout(_) => true,
            Error::Api(OpenAIError::ApiError(response)) => retryable_status(response.status_code),
            Error::Api(OpenAIError::Reqwest(error)) => {
                error.is_timeout()
                    || error.is_connect()
                    || error.status().is_some_and(retryable_status)
            }
            Error::Api(_) | Error::Busy(_) | Error::Empty => false,
        }
    }
}

/// One chat completion request: a system prompt and a user message.
#[derive(Debug, Clone)]
pub struct Completion {
    pub system: String,
    pub user: String,
    pub temperature: f32,
    pub max_tokens: u32,
}

/// Where a streamed completion's text goes as it is written: the whole text
/// so far (not a delta), so a reader that skips values misses nothing.
pub type Draft = tokio::sync::watch::Sender<String>;

#[async_trait]
pub trait LlmClient: Send + Sync {
    /// The completion's text, trimmed and non-empty.
    async fn complete(&self, request: Completion) -> Result<String, Error>;

    /// The same completion, with `draft` told the text so far as it arrives;
    /// returns the whole text. Dropping the future stops the call. Clients
    /// that cannot stream write the whole text once.
    async fn stream(&self, request: Completion, draft: &Draft) -> Result<String, Error> {
        let text = self.complete(request).await?;
        draft.send_replace(text.clone());
        Ok(text)
    }
}

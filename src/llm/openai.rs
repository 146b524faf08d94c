//! The OpenAI-compatible client (OpenAI, Azure, Ollama, vLLM …) via async-openai,
//! with a per-attempt timeout and a bounded number of retries.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::middleware::ReqwestService;
use async_openai::middleware::retry::OpenAIRetryLayer;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs,
};
use async_trait::async_trait;

use super::{Completion, Error, LlmClient};
use crate::config::LlmSettings;
use crate::metrics::Metrics;

pub struct OpenAiClient {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
    retries: u32,
    /// Bounds calls in flight, so a slow LLM cannot pile up work.
    slots: tokio::sync::Semaphore,
    metrics: Metrics,
}

impl OpenAiClient {
    pub fn new(settings: &LlmSettings, metrics: Metrics) -> Self {
        let config = OpenAIConfig::new()
            .with_api_key(settings.api_key.clone())
            .with_api_base(settings.base_url.trim_end_matches('/').to_owned());
        // async-openai retries 429/5xx on its own; that retry is set to zero so
        // `retries` means what it says for every kind of failure (see `complete`).
        let http = tower::ServiceBuilder::new()
            .layer(OpenAIRetryLayer::new(0))
            .service(ReqwestService::new(reqwest::Client::new()));
        Self {
            client: Client::with_config(config).with_http_service(http),
            model: settings.model.clone(),
            timeout: Duration::from_millis(settings.timeout_ms),
            retries: settings.retries,
            slots: tokio::sync::Semaphore::new(settings.max_concurrent_requests),
            metrics,
        }
    }

    async fn attempt(&self, request: &Completion) -> Result<String, Error> {
        let body = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .temperature(request.temperature)
            .max_tokens(request.max_tokens)
            .messages(vec![
                ChatCompletionRequestSystemMessage::from(request.system.as_str()).into(),
                ChatCompletionRequestUserMessage::from(request.user.as_str()).into(),
            ])
            .build()?;
        let response = tokio::time::timeout(self.timeout, self.client.chat().create(body))
            .await
            .map_err(|_| Error::Timeout(self.timeout.as_millis() as u64))??;
        response
            .choices
            .into_iter()
            .find_map(|choice| choice.message.content)
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
            .ok_or(Error::Empty)
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn complete(&self, request: Completion) -> Result<String, Error> {
        let started = std::time::Instant::now();
        let result = self.complete_bounded(&request).await;
        self.metrics
            .llm_latency
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::Timeout(_)) => "timeout",
            Err(Error::Busy(_)) => "busy",
            Err(_) => "error",
        };
        Metrics::count(&self.metrics.llm_calls, outcome, 1);
        result
    }
}

impl OpenAiClient {
    async fn complete_bounded(&self, request: &Completion) -> Result<String, Error> {
        let timeout_ms = self.timeout.as_millis() as u64;
        // Waiting for a slot gets a quarter of the budget: under load a quick
        // template answer beats a queue.
        let _slot = match tokio::time::timeout(self.timeout / 4, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(Error::Busy(timeout_ms)),
        };
        let mut attempt = 0;
        loop {
            match self.attempt(request).await {
                Ok(text) => return Ok(text),
                Err(error) if attempt < self.retries => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "LLM call failed; retrying");
                }
                Err(error) => return Err(error),
            }
        }
    }
}

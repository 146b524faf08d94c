//! The OpenAI-compatible client (OpenAI, Azure, Ollama, vLLM …) via async-openai.
//! One deadline per answer (`llm.turn_deadline_ms`): the slot wait, every
//! attempt and every backoff come out of it. Only timeouts, 429s and 5xx are
//! retried, after the server's `Retry-After` or a jittered backoff.

use std::cell::Cell;
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
use rand::Rng;
use tokio::time::Instant;

use futures_util::StreamExt;

use super::{Completion, Draft, Error, LlmClient};
use crate::config::LlmSettings;
use crate::metrics::Metrics;

tokio::task_local! {
    /// The `Retry-After` of the last HTTP answer within one attempt. The HTTP
    /// service runs inside the attempt's task, and async-openai's errors do
    /// not carry headers.
    static RETRY_AFTER: Cell<Option<Duration>>;
}

/// Notes a `Retry-After` given in seconds (the form API servers use).
fn note_retry_after(response: reqwest::Response) -> reqwest::Response {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    if let Some(delay) = seconds {
        // Outside an attempt's scope there is nobody to tell.
        let _ = RETRY_AFTER.try_with(|cell| cell.set(Some(delay)));
    }
    response
}

/// First backoff; doubled per retry, then jittered by ±50%.
const BACKOFF: Duration = Duration::from_millis(200);
/// An attempt with less time than this left is not worth starting.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

pub struct OpenAiClient {
    client: Client<OpenAIConfig>,
    model: String,
    timeout: Duration,
    retries: u32,
    deadline: Duration,
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
        // The Retry-After is read below the retry layer, which turns error
        // answers into errors.
        let http = tower::ServiceBuilder::new()
            .layer(OpenAIRetryLayer::new(0))
            .map_response(note_retry_after)
            .service(ReqwestService::new(reqwest::Client::new()));
        Self {
            client: Client::with_config(config).with_http_service(http),
            model: settings.model.clone(),
            timeout: Duration::from_millis(settings.timeout_ms),
            retries: settings.retries,
            deadline: Duration::from_millis(settings.turn_deadline_ms),
            slots: tokio::sync::Semaphore::new(settings.max_concurrent_requests),
            metrics,
        }
    }

    fn body(
        &self,
        request: &Completion,
    ) -> Result<async_openai::types::chat::CreateChatCompletionRequest, Error> {
        Ok(CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .temperature(request.temperature)
            .max_tokens(request.max_tokens)
            .messages(vec![
                ChatCompletionRequestSystemMessage::from(request.system.as_str()).into(),
                ChatCompletionRequestUserMessage::from(request.user.as_str()).into(),
            ])
            .build()?)
    }

    async fn attempt(&self, request: &Completion, timeout: Duration) -> Result<String, Error> {
        let body = self.body(request)?;
        let response = tokio::time::timeout(timeout, self.client.chat().create(body))
            .await
            .map_err(|_| Error::Timeout(timeout.as_millis() as u64))??;
        response
            .choices
            .into_iter()
            .find_map(|choice| choice.message.content)
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
            .ok_or(Error::Empty)
    }

    /// One streamed attempt: `timeout` is how long the first token and each
    /// next one may take (a long answer that keeps coming is not cut off; the
    /// turn's deadline still bounds it). The text so far goes to `draft`.
    async fn attempt_streamed(
        &self,
        request: &Completion,
        timeout: Duration,
        draft: &Draft,
    ) -> Result<String, Error> {
        let timed_out = || Error::Timeout(timeout.as_millis() as u64);
        let body = self.body(request)?;
        let mut chunks = tokio::time::timeout(timeout, self.client.chat().create_stream(body))
            .await
            .map_err(|_| timed_out())??;
        let mut text = String::new();
        while let Some(chunk) = tokio::time::timeout(timeout, chunks.next())
            .await
            .map_err(|_| timed_out())?
        {
            let delta: String = chunk?
                .choices
                .into_iter()
                .filter_map(|choice| choice.delta.content)
                .collect();
            if delta.is_empty() {
                continue;
            }
            text.push_str(&delta);
            // Leading white space is not shown; what is shown only grows.
            let shown = text.trim_start();
            if !shown.is_empty() {
                draft.send_replace(shown.to_owned());
            }
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Empty);
        }
        Ok(text.to_owned())
    }

    /// Times the call and counts its outcome.
    async fn measured(
        &self,
        call: impl Future<Output = Result<String, Error>>,
    ) -> Result<String, Error> {
        let started = std::time::Instant::now();
        // Counted as cancelled unless the call finishes: a dropped future
        // (the user left mid-answer) never reaches the end of this function.
        let mut cancelled = CountOnDrop(Some(&self.metrics));
        let result = call.await;
        cancelled.0 = None;
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

/// Counts a call whose future was dropped before it finished.
struct CountOnDrop<'a>(Option<&'a Metrics>);

impl Drop for CountOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(metrics) = self.0 {
            Metrics::count(&metrics.llm_calls, "cancelled", 1);
        }
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn complete(&self, request: Completion) -> Result<String, Error> {
        self.measured(self.bounded(|timeout| self.attempt(&request, timeout), || true))
            .await
    }

    async fn stream(&self, request: Completion, draft: &Draft) -> Result<String, Error> {
        // Once text has been shown, another attempt would show a second,
        // different answer: only attempts that showed nothing are retried.
        self.measured(self.bounded(
            |timeout| self.attempt_streamed(&request, timeout, draft),
            || draft.borrow().is_empty(),
        ))
        .await
    }
}

impl OpenAiClient {
    /// Runs `attempt` (given its timeout) within the turn's deadline: a slot
    /// first, then retries of retryable failures while `may_retry` says so.
    async fn bounded<F, Fut>(
        &self,
        attempt: F,
        may_retry: impl Fn() -> bool,
    ) -> Result<String, Error>
    where
        F: Fn(Duration) -> Fut,
        Fut: Future<Output = Result<String, Error>>,
    {
        let deadline = Instant::now() + self.deadline;
        // Waiting for a slot gets a quarter of the budget: under load a quick
        // template answer beats a queue.
        let slot_wait = (self.timeout / 4).min(self.deadline / 4);
        let _slot = match tokio::time::timeout(slot_wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(Error::Busy(slot_wait.as_millis() as u64)),
        };
        let mut retry = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = attempt(self.timeout.min(left));
            let (result, retry_after) = RETRY_AFTER
                .scope(Cell::new(None), async {
                    let result = attempt.await;
                    (result, RETRY_AFTER.with(Cell::get))
                })
                .await;
            let error = match result {
                Ok(text) => return Ok(text),
                Err(error) if retry < self.retries && error.is_retryable() && may_retry() => error,
                Err(error) => return Err(error),
            };
            let delay = retry_after.unwrap_or_else(|| jittered(BACKOFF * 2u32.pow(retry.min(8))));
            if Instant::now() + delay + MIN_ATTEMPT > deadline {
                tracing::warn!(%error, "LLM call failed; no time left in the turn to retry");
                return Err(error);
            }
            retry += 1;
            tracing::warn!(%error, retry, delay_ms = delay.as_millis() as u64, "LLM call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }
}

/// `base` scaled by a random factor in [0.5, 1.5), so clients that failed
/// together do not retry together.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.5..1.5))
}

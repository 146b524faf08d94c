//! A fake OpenAI-compatible server: records chat completion requests and
//! answers as told at start (a text, a 500, silence past the timeout, or garbage).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub enum Behaviour {
    Answer(String),
    ServerError,
    Slow(Duration),
    Garbage,
    /// 429 with OpenAI's rate-limit error body.
    RateLimited,
    /// Starts a 200 response, then closes the connection mid-body.
    HangUp,
    /// For `"stream": true` requests: server-sent `chat.completion.chunk`s,
    /// one per `every`, then `[DONE]`; other requests get the joined text.
    Stream {
        chunks: Vec<String>,
        every: Duration,
    },
}

#[derive(Clone)]
pub struct FakeLlm {
    pub base_url: String,
    behaviour: Behaviour,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Streams the client went away from before the last chunk.
    cancelled: Arc<std::sync::atomic::AtomicUsize>,
}

impl FakeLlm {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let fake = Self {
            base_url,
            behaviour,
            requests: Arc::default(),
            cancelled: Arc::default(),
        };
        if matches!(fake.behaviour, Behaviour::HangUp) {
            tokio::spawn(hang_up_forever(listener, fake.requests.clone()));
            return fake;
        }
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// How many streamed answers the client cut off before their end.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that were answers (not summaries): they carry the user message block.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| user_text(r).contains("[CURRENT USER MESSAGE]"))
            .collect()
    }
}

/// A raw TCP server that reads a request, sends half a response and closes.
async fn hang_up_forever(listener: tokio::net::TcpListener, requests: Arc<Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut buf = vec![0u8; 64 * 1024];
        let n = stream.read(&mut buf).await.unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        requests
            .lock()
            .unwrap()
            .push(serde_json::from_str(body).unwrap_or(
                json!({"messages": [{"role": "user", "content": "[CURRENT USER MESSAGE]"}]}),
            ));
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"choices\": [")
            .await;
        drop(stream);
    }
}

pub fn system_text(request: &Value) -> String {
    message_text(request, "system")
}

pub fn user_text(request: &Value) -> String {
    message_text(request, "user")
}

fn message_text(request: &Value, role: &str) -> String {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == role)
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn complete(State(fake): State<FakeLlm>, Json(body): Json<Value>) -> Response {
    fake.requests.lock().unwrap().push(body.clone());
    let behaviour = fake.behaviour.clone();
    match behaviour {
        Behaviour::Stream { chunks, every } if body["stream"] == true => {
            streamed(chunks, every, fake.cancelled.clone(), &body)
        }
        Behaviour::Stream { chunks, .. } => answer(&chunks.concat(), &body),
        Behaviour::Answer(text) => answer(&text, &body),
        Behaviour::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}})),
        )
            .into_response(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, "{}").into_response()
        }
        Behaviour::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            // As OpenAI does: how long to wait before the next attempt.
            [("retry-after", "1")],
            Json(json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})),
        )
            .into_response(),
        Behaviour::HangUp => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Behaviour::Garbage => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [this is not json",
        )
            .into_response(),
    }
}

fn answer(text: &str, body: &Value) -> Response {
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .into_response()
}

/// Counts a stream dropped (the client went away) before its last chunk.
struct Unfinished(Option<Arc<std::sync::atomic::AtomicUsize>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(cancelled) = self.0.take() {
            cancelled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// OpenAI's streamed answer: `data: {chat.completion.chunk}` lines, `[DONE]`.
fn streamed(
    chunks: Vec<String>,
    every: Duration,
    cancelled: Arc<std::sync::atomic::AtomicUsize>,
    body: &Value,
) -> Response {
    let model = body["model"].clone();
    let frame = move |delta: Value, finish: Value| {
        let chunk = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
        });
        format!("data: {chunk}\n\n")
    };
    let mut frames: Vec<String> = vec![frame(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    frames.extend(
        chunks
            .iter()
            .map(|c| frame(json!({"content": c}), Value::Null)),
    );
    frames.push(frame(json!({}), json!("stop")));
    frames.push("data: [DONE]\n\n".to_owned());
    let guard = Unfinished(Some(cancelled));
    let stream = futures_util::stream::unfold(
        (frames.into_iter(), guard, true),
        move |(mut frames, mut guard, first)| async move {
            let next = frames.next()?;
            if !first {
                tokio::time::sleep(every).await;
            }
            if frames.len() == 0 {
                // Sent in full: a client that hangs up now did not cut it off.
                guard.0 = None;
            }
            Some((
                Ok::<_, std::convert::Infallible>(next),
                (frames, guard, false),
            ))
        },
    );
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

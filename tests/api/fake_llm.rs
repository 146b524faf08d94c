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
}

#[derive(Clone)]
pub struct FakeLlm {
    pub base_url: String,
    behaviour: Behaviour,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl FakeLlm {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let fake = Self {
            base_url,
            behaviour,
            requests: Arc::default(),
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
        Behaviour::Answer(text) => Json(json!({
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
        .into_response(),
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

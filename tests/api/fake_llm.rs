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
        Behaviour::Garbage => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [this is not json",
        )
            .into_response(),
    }
}

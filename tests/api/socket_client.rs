//! A real Socket.IO client (rust_socketio, protocol v5) that records every event
//! it receives, with waits that always time out instead of hanging.

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct SocketClient {
    client: Client,
    events: mpsc::UnboundedReceiver<(String, Value)>,
}

fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.remove(0),
        Payload::Text(_) => Value::Null,
        Payload::Binary(bytes) => json!(bytes.to_vec()),
        #[allow(deprecated)]
        Payload::String(s) => Value::String(s),
    }
}

impl SocketClient {
    /// Connects to the server's `/` namespace, optionally with an auth object, and
    /// waits for the namespace's answer: `Err` carries a connect error's message.
    /// (rust_socketio does not buffer emits until connected, as browsers do.)
    pub async fn connect(base: &str, auth: Option<Value>) -> Result<Self, String> {
        Self::connect_with(base, auth, &[]).await
    }

    /// As [`SocketClient::connect`], with extra handshake headers (`Origin`).
    pub async fn connect_with(
        base: &str,
        auth: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        let (tx, events) = mpsc::unbounded_channel();
        let any_tx = tx.clone();
        let mut builder = ClientBuilder::new(base)
            .namespace("/")
            .transport_type(TransportType::Any)
            .reconnect(false)
            .on_any(move |event, payload, _| {
                let _ = any_tx.send((event.as_str().to_owned(), first_value(payload)));
                async {}.boxed()
            });
        for event in [Event::Error, Event::Connect, Event::Close] {
            let tx = tx.clone();
            let name = event.as_str().to_owned();
            builder = builder.on(event, move |payload, _| {
                let _ = tx.send((name.clone(), first_value(payload)));
                async {}.boxed()
            });
        }
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        for (name, value) in headers {
            builder = builder.opening_header(*name, *value);
        }
        let client = builder.connect().await.map_err(|e| e.to_string())?;
        let mut socket = Self { client, events };
        let answer = tokio::time::timeout(WAIT, async {
            while let Some((event, value)) = socket.events.recv().await {
                match event.as_str() {
                    "connect" => return Ok(()),
                    "error" => return Err(value.to_string()),
                    _ => {}
                }
            }
            Err("closed before connecting".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err("no connect answer in time".to_owned()));
        answer.map(|()| socket)
    }

    pub async fn emit(&self, event: &str, data: Value) {
        self.client.emit(event, data).await.expect("emit");
    }

    /// The next event called `name`, skipping others; panics after [`WAIT`].
    pub async fn next(&mut self, name: &str) -> Value {
        self.try_next(name, WAIT)
            .await
            .unwrap_or_else(|| panic!("no `{name}` event within {WAIT:?}"))
    }

    /// The next event called `name` within `wait`, or `None`.
    pub async fn try_next(&mut self, name: &str, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, async {
            while let Some((event, value)) = self.events.recv().await {
                if event == name {
                    return Some(value);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    /// The next event of any name within `wait`, or `None`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(String, Value)> {
        tokio::time::timeout(wait, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// `session_request` → the confirmed id.
    pub async fn start_session(&mut self, session_id: Option<&str>) -> Value {
        self.emit("session_request", json!({ "session_id": session_id }))
            .await;
        self.next("session_confirm").await
    }

    /// `user_uttered` with `customData` as given (identity claims and all).
    pub async fn say_with(&self, session: &str, custom_data: Value, message: &str) {
        self.emit(
            "user_uttered",
            json!({ "message": message, "session_id": session, "customData": custom_data }),
        )
        .await;
    }

    pub async fn say(&self, session: &str, user: &str, message: &str) {
        self.emit(
            "user_uttered",
            json!({ "message": message, "session_id": session, "customData": { "userId": user } }),
        )
        .await;
    }

    /// Collects `bot_uttered` payloads until none arrives for a short while.
    pub async fn replies(&mut self) -> Vec<Value> {
        let mut out = vec![self.next("bot_uttered").await];
        while let Some(more) = self
            .try_next("bot_uttered", Duration::from_millis(300))
            .await
        {
            out.push(more);
        }
        out
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}

/// All `text` fields of some payloads, joined.
pub fn texts(payloads: &[Value]) -> String {
    payloads
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
